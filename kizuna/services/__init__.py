"""Use cases of patients, providers and auditors (no HTTP, no CLI)."""
