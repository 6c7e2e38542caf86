"""The client tests' helpers on the import path. Their fixtures are tests/conftest.py's:
``chain_env`` and ``api_server`` (a real anvil, a deployment, the real API under uvicorn in a
subprocess, one per module) and the Synthea patient ``synthea_file`` / ``synthea_bundle``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))
