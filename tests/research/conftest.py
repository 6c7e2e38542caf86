"""The research tests' helpers on the import path. Their fixtures are tests/conftest.py's:
``chain_env`` (a real anvil with the Kizuna contracts, the study registry among them) and
``api_server`` (the real API under uvicorn in a subprocess), one per module."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))
