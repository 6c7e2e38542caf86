"""The web PatientClient's import with ONE wallet signature (web/src/patient/batches.ts) against
the real API and anvil: ``web/test/patient_cli.ts`` (Node 24) is the page's patient, with a
private-key signer that records every wallet request.

(a) records of several scopes are encrypted, staged and registered under one Merkle root with
    exactly one wallet request (a RegisterBatch signature; no RegisterRecord, no ScopeKeys);
    the chain holds the batch; the page reads every record back against the manifest the chain's
    root proves; a provider granted one scope — the Python client, and the provider page's code
    (web/test/provider_cli.ts, checking each read's proof against batchOf) — lists and reads
    exactly those records, byte for byte;
(b) "send it myself": one registerBatch transaction from the wallet instead;
(c) a failure mid-way resumes: a staging request that fails, then a batch registration whose
    answer is lost (the front forwards it and answers 502) — retried with the same items, the
    envelopes already staged are not sent again, the wallet is asked once, the chain has one
    batch, and every record is registered once;
(d) a service that staged another envelope than the one sent is caught before anything is
    signed; a read answer whose commitment is not the batch leaf's is refused by the provider
    page's code (its proof no longer leads to the root the chain has).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import test_patient_parity as parity
from apienv import ApiServer, ChainEnv
from test_patient_parity import FHIR, ROOT, Provider, observation, ok, web_patient

from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.http import ApiClient
from kizuna.client.provider import ProviderClient
from kizuna.services.batches import RECORD_BATCH_REGISTERED
from kizuna.tls import http_client

# The stack of the TS patient's tests (a node, a deployment, an API server, providers).
node, env, server = parity.node, parity.env, parity.server
providers, patient_key = parity.providers, parity.patient_key

pytestmark = [pytest.mark.node, pytest.mark.anvil]

LABELS = ["Observation:laboratory", "Observation:vital-signs", "Condition"]


def _items(n: int) -> list[dict[str, str]]:
    return [{"content": observation(float(i)).hex(), "label": LABELS[i % len(LABELS)],
             "content_type": FHIR} for i in range(n)]


def _wallet_requests(answer: dict[str, Any]) -> list[str]:
    """What the wallet was asked after signing in and unlocking the keys: EIP-712 primary
    types, or 'transaction'."""
    kinds = [a.get("primaryType") or a["kind"] for a in answer["asked"]]
    return [k for k in kinds if k not in ("KeyDerivation", "message")]


def batches_of(rpc_url: str, ledger: str, patient: str) -> list[Any]:
    """The patient's RecordBatchRegistered events, from the node itself (``eth_getLogs``)."""
    answer = httpx.post(rpc_url, timeout=30, json={
        "jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{
            "address": ledger, "fromBlock": "0x0", "toBlock": "latest",
            "topics": ["0x" + RECORD_BATCH_REGISTERED.hex(),
                       "0x" + bytes(12).hex() + patient[2:].lower()]}]}).json()
    logs: list[Any] = answer["result"]
    return logs


def _batches_of(env: ChainEnv, patient: str) -> list[Any]:
    return batches_of(env.node.rpc_url, env.deployment.consent_ledger, patient)


# --- (a) (b) ----------------------------------------------------------------------------------


@pytest.mark.parametrize("gasless", [True, False], ids=["signed", "send-it-myself"])
def test_an_import_asks_the_wallet_once_and_reads_back(
        env: ChainEnv, server: ApiServer, providers: list[Provider], patient_key: str,
        gasless: bool) -> None:
    items = _items(7)
    answer = web_patient(server, env, patient_key, gasless=gasless, ops=[
        {"op": "importRecords", "items": items}, {"op": "records"}])
    imported, records = answer["results"]
    patient = answer["address"]
    ok(imported)
    assert _wallet_requests(answer) == (["RegisterBatch"] if gasless else ["transaction"])
    asked = next(a for a in answer["asked"] if a.get("primaryType") != "KeyDerivation"
                 and a["kind"] != "message")
    assert asked["purpose"]["title"] == "Register 7 records in one transaction"
    (batch,) = imported["batches"]
    assert batch["count"] == 7 and imported["phases"] == ["encrypting", "signing",
                                                           "registering"]
    assert imported["last"] == {"phase": "registering", "total": 7, "encrypted": 7,
                                "uploaded": 7, "registered": 7}
    status = env.chain.ledger.batch_of(bytes.fromhex(batch["root"][2:]))
    assert status is not None and status.patient == patient and status.count == 7
    assert len(_batches_of(env, patient)) == 1
    ids = imported["record_ids"]
    assert {r["record_id"]: r["label"] for r in ok(records)["value"]} == {
        rid: item["label"] for rid, item in zip(ids, items, strict=True)}

    # Read back in the page's code: every commitment from the manifest the chain's root proves.
    again = web_patient(server, env, patient_key, [
        {"op": "readMany", "record_ids": ids}, {"op": "readOwn", "record_id": ids[4]},
        {"op": "grant", "provider": providers[0].signer.address,
         "labels": ["Observation:vital-signs"], "expires_in": 3600}])
    many, one, granted = again["results"]
    assert [bytes.fromhex(c) for c in ok(many)["contents"]] == [
        bytes.fromhex(i["content"]) for i in items]
    assert bytes.fromhex(ok(one)["content"]) == bytes.fromhex(items[4]["content"])
    ok(granted)
    # The provider page's code, granted the vital signs, reads exactly those (each read's
    # proof checked against the chain's batchOf).
    granted_ids = {rid for rid, item in zip(ids, items, strict=True)
                   if item["label"] == "Observation:vital-signs"}
    page_key = _web_provider_key(env, server)
    page_reader = LocalKeySigner(page_key).address
    again = web_patient(server, env, patient_key, [
        {"op": "grant", "provider": page_reader, "labels": ["Observation:vital-signs"],
         "expires_in": 3600}])
    ok(again["results"][0])
    read_all = _web_provider(server, env, page_key, [{"op": "readAll", "patient": patient}])
    (got_all,) = read_all["results"]
    assert ok(got_all)["failures"] == []
    assert got_all["contents"] == {rid: item["content"] for rid, item in zip(ids, items,
                                                                           strict=True)
                                   if rid in granted_ids}

    # A Python provider granted the vital signs lists and reads those records (only those).
    reader = providers[0].client
    assert {"0x" + bytes(r.record_id).hex() for r in reader.records(patient=patient)} == {
        rid for rid, item in zip(ids, items, strict=True)
        if item["label"] == "Observation:vital-signs"}
    for rid, item in zip(ids, items, strict=True):
        if item["label"] == "Observation:vital-signs":
            got = reader.read(patient=patient, record_id=bytes.fromhex(rid[2:]))
            assert got == bytes.fromhex(item["content"])


def _web_provider_key(env: ChainEnv, server: ApiServer) -> str:
    """A registered provider's private key (its Umbral key derived from its wallet, as both
    the Python client and the provider page derive it)."""
    key = "0x" + os.urandom(32).hex()
    signer = LocalKeySigner(key)
    env.fund(signer.address)
    service = ApiService(ApiClient(server.url, timeout=60), env.chain)
    try:
        client = ProviderClient(signer=signer, service=service, chain=env.chain)
        env.add_provider(signer, client.public_key.to_bytes())
    finally:
        service.close()
    return key


def _web_provider(server: ApiServer, env: ChainEnv, key: str, ops: list[dict[str, Any]], *,
                  base_url: str | None = None) -> dict[str, Any]:
    """The provider page's client (web/test/provider_cli.ts) with ``ops``; its JSON answer."""
    node = shutil.which("node", path=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert node, "no node on PATH: `. scripts/bootstrap.sh` puts Node 24 there"
    request = {"base_url": base_url or server.url, "rpc_url": env.node.rpc_url,
               "private_key": key, "ops": ops}
    done = subprocess.run([node, str(ROOT / "web" / "test" / "provider_cli.ts")],
                          input=json.dumps(request), capture_output=True, text=True,
                          timeout=300, cwd=ROOT / "web", check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


# --- (c) (d): a front that fails, loses answers, or lies --------------------------------------


@dataclass
class Front:
    """A man in the middle before the real API: ``rule(method, path, n)`` (n: how many times
    this method and path were seen) answers "fail" (503, not forwarded), "lose" (forwarded,
    answered 502), "lie" (forwarded, the staged commitments altered) or None (forwarded)."""

    target: str
    rule: Callable[[str, str, int], str | None]
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    staged: list[int] = field(default_factory=list)  # envelopes staged per forwarded request
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def _front(front: Front) -> Iterator[Front]:
    outer = front
    upstream = http_client(front.target)  # one for every forwarded request

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            key = (self.command, self.path.split("?")[0])
            outer.seen[key] = n = outer.seen.get(key, 0) + 1
            action = outer.rule(*key, n)
            error = {"error": {"kind": "ServiceUnavailable", "message": "the front failed"}}
            if action == "fail":
                self.reply(503, json.dumps(error).encode(), {"Content-Type": "application/json"})
                return
            skip = {"host", "content-length", "connection", "transfer-encoding"}
            answer = upstream.request(self.command, outer.target + self.path, content=body,
                                      timeout=120, headers={k: v for k, v in self.headers.items()
                                                         if k.lower() not in skip})
            data = answer.content
            if key == ("POST", "/patient/staged") and answer.status_code == 201:
                staged = answer.json()
                outer.staged.append(len(staged))
                if action == "lie":
                    staged[-1]["commitment"] = "0x" + "00" * 32
                    data = json.dumps(staged).encode()
            if key == ("POST", "/provider/reads") and action == "lie" and answer.is_success:
                served = answer.json()
                served["commitment"] = "0x" + "00" * 32  # its leaf no longer leads to the root
                data = json.dumps(served).encode()
            if action == "lose":
                self.reply(502, json.dumps(error).encode(), {"Content-Type": "application/json"})
                return
            self.reply(answer.status_code, data, {
                k: v for k, v in answer.headers.items()
                if k.lower() not in skip | {"content-encoding", "date", "server"}})

        do_GET = do_POST = do_PUT = forward

    front.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=front.server.serve_forever, daemon=True).start()
    try:
        yield front
    finally:
        front.server.shutdown()
        front.server.server_close()


def test_an_interrupted_import_resumes_without_registering_twice(
        env: ChainEnv, server: ApiServer, patient_key: str) -> None:
    def rule(method: str, path: str, n: int) -> str | None:
        if (method, path) == ("POST", "/patient/staged") and n == 2:
            return "fail"  # the second staging request (records 501..) fails
        if (method, path) == ("POST", "/patient/batches") and n == 1:
            return "lose"  # registered, but the answer never arrives
        return None

    items = _items(520)  # two staging requests of 500 and 20
    for front in _front(Front(server.url, rule)):
        answer = web_patient(server, env, patient_key, base_url=front.url, ops=[
            {"op": "importRecords", "items": items},
            {"op": "importRecords", "again": True},
            {"op": "importRecords", "again": True},
            {"op": "importRecords", "again": True}])
        staged = front.staged
        batch_posts = front.seen[("POST", "/patient/batches")]
    failed, lost, finished, nothing_left = answer["results"]
    patient = answer["address"]
    assert failed["status"] == 503 and "front failed" in failed["message"]
    assert lost["status"] == 502
    (batch,) = ok(finished)["batches"]
    assert batch["count"] == 520
    assert ok(nothing_left)["batches"] == []  # everything registered: nothing sent again
    # The first 500 were staged once; the retry staged only the 20 left.
    assert staged == [500, 20], staged
    assert batch_posts == 2  # the lost answer, then the same batch again
    # One wallet request for the whole import, and one batch on chain.
    assert _wallet_requests(answer) == ["RegisterBatch"]
    assert len(_batches_of(env, patient)) == 1
    listed = web_patient(server, env, patient_key, [{"op": "records"}])["results"][0]
    assert sorted(r["record_id"] for r in ok(listed)["value"]) == sorted(finished["record_ids"])


def test_a_service_that_stages_another_envelope_is_caught_before_signing(
        env: ChainEnv, server: ApiServer, patient_key: str) -> None:
    def rule(method: str, path: str, n: int) -> str | None:
        return "lie" if (method, path) == ("POST", "/patient/staged") else None

    for front in _front(Front(server.url, rule)):
        answer = web_patient(server, env, patient_key, base_url=front.url, ops=[
            {"op": "importRecords", "items": _items(3)}])
    (refused,) = answer["results"]
    assert refused["error"] == "IntegrityError", refused
    assert "fingerprint differs" in refused["message"]
    assert _wallet_requests(answer) == []  # nothing was signed
    assert _batches_of(env, LocalKeySigner(patient_key).address) == []


def test_a_read_answer_with_another_commitment_is_refused_by_the_provider_page(
        env: ChainEnv, server: ApiServer, patient_key: str) -> None:
    items = _items(3)
    page_key = _web_provider_key(env, server)
    answer = web_patient(server, env, patient_key, [
        {"op": "importRecords", "items": items},
        {"op": "grant", "provider": LocalKeySigner(page_key).address, "labels": LABELS,
         "expires_in": 3600}])
    imported, granted = answer["results"]
    ok(imported)
    ok(granted)

    def rule(method: str, path: str, n: int) -> str | None:
        return "lie" if (method, path) == ("POST", "/provider/reads") else None

    for front in _front(Front(server.url, rule)):
        read = _web_provider(server, env, page_key, base_url=front.url, ops=[
            {"op": "readAll", "patient": answer["address"]}])
    (outcome,) = read["results"]
    assert ok(outcome)["contents"] == {}
    assert len(outcome["failures"]) == 3
    for failure in outcome["failures"]:
        assert failure["error"] == "IntegrityError", failure
        assert "does not lead to batch" in failure["message"], failure
