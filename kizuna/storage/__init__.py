"""Encrypted records from patient to provider: envelopes, content stores, FHIR."""
