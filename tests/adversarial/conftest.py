"""The adversarial suite's fixtures: a real stack to attack, started here (nothing mocked).

Fixtures (all but ``stack_node`` are per test, so an attack never sees another's state —
except in the modules that set ``SHARED_STACK = True``: their tests share one deployment,
settings and API per worker (``shared_chain_env``, ``shared_api_server``, through
``module_chain_env``, ``module_settings``, ``module_api_server``; each still makes its own
wallets and world), a test of them that needs its own asks for ``fresh_stack``, and a module
that needs settings of its own overrides ``module_settings``):

* ``stack_node`` (session) — the suite's own anvil (:class:`LocalNode`). The API
  harness's dev keys (admin, relayer, funder, anchorer) are used by one process at a time on it.
* ``chain_env`` — a fresh deployment on that node (:class:`apienv.ChainEnv`: ``chain``,
  ``admin``, ``new_signer()``, ``add_provider()``, ``grant_auditor()``, ...).
* ``settings`` — :class:`Settings` for that deployment, embedded store and SQLite in the test's
  ``tmp_path``, a free port of 127.0.0.1.
* ``start_api`` — a factory: ``start_api(**overrides)`` starts another real API (``kizuna
  serve`` under uvicorn, in a subprocess) with ``settings`` changed by ``overrides`` (e.g. a
  small body limit); stopped at teardown.
* ``api_server`` — the real API on ``settings`` (:class:`apienv.ApiServer`: ``url``, ``pid``,
  ``proc_status("VmRSS")``, ``kill()``).
* ``http`` — an :class:`httpx.Client` on ``api_server``.
* ``people`` — :class:`participants.People`: a signed-in patient, a registered signed-in
  provider, an auditor (role granted), as in tests/api.
* ``world`` — a demo-like world (:class:`adversarial_world.World`): two patients (``alice``,
  ``bob``) who each imported a FHIR history (five records in four scopes:
  ``records[address][scope label]`` are the :class:`participants.Sealed` envelopes), a
  registered provider with live grants (alice: ``Observation:laboratory`` and ``Condition``;
  bob: ``Observation:vital-signs``), an auditor, and a signed-in ``stranger`` wallet with no
  grants and no role beyond patient.

The API harness is tests/api's (apienv.py, participants.py, fhir_history.py) and the stack
fixtures are its stack_fixtures.py, imported from there, not copied."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from adversarial_world import World
from apienv import ApiServer, ChainEnv
from fhir_history import history
from participants import HttpPatient, Participant, Sealed, signed_in_auditor, signed_in_provider
from stack_fixtures import *  # noqa: F403  (registers the stack fixtures for this folder)

from kizuna.chain.localnode import free_port
from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.storage.fhir.importer import import_bundle

ALICE_GRANTED = ("Observation:laboratory", "Condition")
BOB_GRANTED = ("Observation:vital-signs",)


@pytest.fixture
def start_api(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """``start_api(**overrides)``: another real API with changed settings (new port, own data
    directory unless the overrides name one); every server started is stopped at teardown."""
    started: list[ApiServer] = []

    def start(**overrides: Any) -> ApiServer:
        port = free_port()
        data = tmp_path / f"api-{len(started)}"
        data.mkdir()
        values: dict[str, Any] = dict(
            api_port=port, siwe_domain=f"127.0.0.1:{port}", siwe_uri=f"http://127.0.0.1:{port}",
            store_path=data / "store", database_url=f"sqlite:///{data / 'service.sqlite3'}")
        values.update(overrides)
        server = ApiServer(settings=settings.model_copy(update=values),
                           log_path=data / "api.log")
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def world(chain_env: ChainEnv, api_server: ApiServer, http: httpx.Client) -> World:
    chain = chain_env.chain
    alice = HttpPatient(signer=LocalKeySigner.generate(), chain=chain, http=http).login()
    bob = HttpPatient(signer=LocalKeySigner.generate(), chain=chain, http=http).login()
    provider = signed_in_provider(chain_env, http)
    auditor = signed_in_auditor(chain_env, http)
    stranger = Participant(signer=LocalKeySigner.generate(), chain=chain, http=http).login()
    records: dict[str, dict[str, Sealed]] = {}
    for patient in (alice, bob):
        records[patient.address] = {
            entry.scope_label: patient.add(entry.content, label=entry.scope_label,
                                           content_type=entry.content_type)
            for entry in import_bundle(history())}
    granted = {alice.address: ALICE_GRANTED, bob.address: BOB_GRANTED}
    for patient in (alice, bob):
        answer = patient.grant(provider.address, provider.keys.public_key,
                               list(granted[patient.address]))
        assert answer.status_code == 200, answer.text
    return World(env=chain_env, server=api_server, http=http, alice=alice, bob=bob,
                 provider=provider, auditor=auditor, stranger=stranger, records=records,
                 granted=granted)
