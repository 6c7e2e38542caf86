"""Finding 6: a fresh wallet with 0 wei could store without limit (a 50 MiB record, 1 GiB
allowed, no count or total) and spend the relayer's gas at will.

Now a wallet's stored envelopes are capped in number and bytes (``max_records_per_wallet``,
``max_bytes_per_wallet``: 403 ``QuotaExceeded``, as waiting never helps), and the relayer's gas
per wallet and UTC day (``relayer_gas_per_day``: 429 with ``Retry-After`` = the seconds until
00:00 UTC). Every refusal leaves nothing: no record row, no pin, no transaction of the relayer.
Attacked over HTTP against the real API (``kizuna serve``) on anvil."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from apienv import ApiServer, ChainEnv, own_module_settings
from eth_account import Account
from participants import HttpPatient, HttpProvider, Sealed, hx

from kizuna.chain.connection import web3_for
from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.storage.embedded import EmbeddedStore

pytestmark = pytest.mark.anvil

LAB = "Observation:laboratory"

SHARED_STACK = True
"""A deployment and an API of the module's own, with both storage quotas set
(``module_settings``): the record-count and the bytes test each fill a fresh wallet's own quota
there and check the refusal names its quota (``field``); the relayer-budget test starts its own
two APIs on one database (``start_api``). Store and relayer nonce are compared before and after
a test's own refused request."""

RECORDS_QUOTA = 2
BYTES_QUOTA = 256 * 1024


@pytest.fixture(scope="module")
def module_settings(module_chain_env: ChainEnv,
                    tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return own_module_settings(module_chain_env, tmp_path_factory,
                               max_records_per_wallet=RECORDS_QUOTA,
                               max_bytes_per_wallet=BYTES_QUOTA)


def _patient(server: ApiServer, env: ChainEnv, http: httpx.Client) -> HttpPatient:
    patient = HttpPatient(signer=LocalKeySigner.generate(), chain=env.chain, http=http)
    patient.login()
    assert web3_for(env.node.rpc_url).eth.get_balance(patient.address) == 0  # 0 wei
    return patient


def _relayer_nonce(env: ChainEnv) -> int:
    relayer = Account.from_key(env.relayer_key).address
    return int(web3_for(env.node.rpc_url).eth.get_transaction_count(relayer, "pending"))


def _pins(server: ApiServer) -> set[str]:
    # the store's own reader: pin files and pins.log (a staging request's pins)
    return set(EmbeddedStore(server.settings.store_path).pins())


def _blocks(server: ApiServer) -> set[str]:
    return {p.name for p in (Path(server.settings.store_path) / "blocks").rglob("*")
            if p.is_file()}


def _refused_and_nothing_kept(server: ApiServer, env: ChainEnv, patient: HttpPatient,
                              sealed: Sealed, answer: httpx.Response, *, status: int,
                              quota: str, before: tuple[int, set[str], set[str]]) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["kind"] == "QuotaExceeded" and error["field"] == quota, error
    nonce, pins, blocks = before
    assert _relayer_nonce(env) == nonce  # the relayer sent nothing
    assert env.chain.ledger.record_of(sealed.record_id) is None
    listed = patient.get("/patient/records").json()
    assert hx(sealed.record_id) not in {r["record_id"] for r in listed}
    assert _pins(server) == pins and _blocks(server) == blocks  # not a block of it stored


def test_a_fresh_wallet_hits_the_record_count_quota(
        chain_env: ChainEnv, api_server: ApiServer) -> None:
    server = api_server
    assert server.settings.max_records_per_wallet == RECORDS_QUOTA
    with httpx.Client(base_url=server.url, timeout=60) as http:
        patient = _patient(server, chain_env, http)
        for i in range(RECORDS_QUOTA):  # tiny records: far below the bytes quota
            patient.add(b"glucose %d" % i, label=LAB, content_type="text/plain")
        sealed = patient.seal(b"one too many", label=LAB, content_type="text/plain")
        before = (_relayer_nonce(chain_env), _pins(server), _blocks(server))
        answer = patient.upload(sealed)
        _refused_and_nothing_kept(server, chain_env, patient, sealed, answer, status=403,
                                  quota="records", before=before)
        assert "Retry-After" not in answer.headers  # waiting would not help
        assert len(patient.get("/patient/records").json()) == RECORDS_QUOTA
        # another wallet has its own quota
        other = _patient(server, chain_env, http)
        other.add(b"fine", label=LAB, content_type="text/plain")


def test_a_fresh_wallet_hits_the_bytes_quota(
        chain_env: ChainEnv, api_server: ApiServer) -> None:
    server = api_server
    assert server.settings.max_bytes_per_wallet == BYTES_QUOTA
    # two records in all (the refused one not counted): within the record-count quota
    with httpx.Client(base_url=server.url, timeout=60) as http:
        patient = _patient(server, chain_env, http)
        patient.add(b"small report", label=LAB, content_type="text/plain")
        big = patient.seal(bytes(300 * 1024), label=LAB, content_type="application/octet-stream")
        before = (_relayer_nonce(chain_env), _pins(server), _blocks(server))
        answer = patient.upload(big)
        _refused_and_nothing_kept(server, chain_env, patient, big, answer, status=403,
                                  quota="bytes", before=before)
        # what still fits is accepted
        patient.add(bytes(100 * 1024), label=LAB, content_type="application/octet-stream")


def _gas_spent(server: ApiServer, wallet: str) -> int:
    path = server.settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT gas FROM relayer_gas WHERE wallet = ? AND day = ?",
                         (wallet, int(time.time()) // 86_400)).fetchone()
    return int(row[0]) if row else 0


def test_relayer_budget_exhausted_answers_429_and_sends_nothing(
        chain_env: ChainEnv, start_api: Callable[..., ApiServer], tmp_path: Path) -> None:
    data = tmp_path / "shared"
    data.mkdir()
    # the storage quotas as by default (not the module's small ones): only the budget refuses
    defaults = {name: Settings.model_fields[name].default
                for name in ("max_records_per_wallet", "max_bytes_per_wallet")}
    shared = dict(store_path=data / "store", database_url=f"sqlite:///{data / 'db.sqlite3'}",
                  **defaults)
    first = start_api(relayer_gas_per_day=10**9, **shared)
    with httpx.Client(base_url=first.url, timeout=60) as http:
        patient = _patient(first, chain_env, http)
        provider = HttpProvider(signer=LocalKeySigner.generate(), chain=chain_env.chain,
                                http=http)
        chain_env.add_provider(provider.signer, provider.keys.public_key.to_bytes())
        patient.add(b"lab result", label=LAB, content_type="text/plain")
        granted = patient.grant(provider.address, provider.keys.public_key, [LAB])
        assert granted.status_code == 200, granted.text
    spent = _gas_spent(first, patient.address)
    assert spent > 0  # the relayer's gas for this wallet is counted, in the database
    first.stop()

    # Another instance on the same database, whose daily budget is what was spent already.
    second = start_api(relayer_gas_per_day=spent, **shared)
    with httpx.Client(base_url=second.url, timeout=60) as http:
        patient.http = http
        patient.login()
        sealed = patient.seal(b"one more", label=LAB, content_type="text/plain")
        before = (_relayer_nonce(chain_env), _pins(second), _blocks(second))
        answer = patient.upload(sealed)
        _refused_and_nothing_kept(second, chain_env, patient, sealed, answer, status=429,
                                  quota="relayer_gas", before=before)
        wait = int(answer.headers["Retry-After"])
        until_midnight = 86_400 - int(time.time()) % 86_400
        assert 0 < wait <= 86_400 and abs(wait - until_midnight) <= 5, wait

        nonce = _relayer_nonce(chain_env)
        revoke = patient.revoke(provider.address, LAB)  # through the relayer: refused too
        assert revoke.status_code == 429, revoke.text
        assert int(revoke.headers["Retry-After"]) > 0
        assert _relayer_nonce(chain_env) == nonce
        sid = patient.scope(LAB)
        still = chain_env.chain.ledger.grant_of(patient.address, provider.address, sid)
        assert still is not None and still.live
        typed = chain_env.chain.ledger.revoke_typed_data(
            patient=patient.address, provider=provider.address, scope_id=sid,
            deadline=patient.deadline())
        relayed = patient.post("/wallet/relay", {
            "typed_data": typed.to_json(), "signature": hx(patient.signer.sign_typed_data(typed))})
        assert relayed.status_code == 429, relayed.text
        assert relayed.json()["error"]["field"] == "relayer_gas"
        assert int(relayed.headers["Retry-After"]) > 0
        assert _relayer_nonce(chain_env) == nonce
        assert _gas_spent(second, patient.address) == spent
