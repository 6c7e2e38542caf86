"""The Kizuna HTTP service (FastAPI)."""
