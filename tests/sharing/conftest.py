"""Fixtures of the sharing tests: the Synthea patient's resources and that patient imported over
the API. The anvil, deployment and API (``chain_env``, ``api_server``, one per module) and the
patient (``synthea_file``) are tests/conftest.py's."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))

from apienv import ApiServer, ChainEnv
from sharing_env import patient_of

from kizuna.client.importer import Importer, bundle_source
from kizuna.client.patient import PatientClient


@pytest.fixture(scope="session")
def synthea_resources(synthea_file: Path) -> list[dict[str, Any]]:
    data = json.loads(synthea_file.read_text("utf-8"))
    return [entry["resource"] for entry in data["entry"]]


@pytest.fixture(scope="module")
def synthea_patient_client(api_server: ApiServer, chain_env: ChainEnv, synthea_file: Path,
                           tmp_path_factory: pytest.TempPathFactory
                           ) -> Iterator[PatientClient]:
    """The Synthea patient's whole history imported over the API (one batch), signed in."""
    raw = synthea_file.read_bytes()
    with patient_of(api_server, chain_env, "0x" + os.urandom(32).hex()) as client:
        Importer(client, journal_root=tmp_path_factory.mktemp("imports")).run(
            [bundle_source(json.loads(raw), raw, name="bundle.json")])
        yield client
