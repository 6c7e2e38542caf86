"""FHIR R4 for Kizuna: validation, canonical JSON, scope labels, Bundle import."""
