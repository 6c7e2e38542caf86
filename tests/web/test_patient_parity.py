"""The web PatientClient (web/src/patient) against the real API and anvil, byte for byte with
the Python client, both ways.

``web/test/patient_cli.ts`` (Node 24 runs it directly) is the page's patient: it signs in with
SIWE, unlocks its keys with the KeyDerivation signature and runs the PatientClient with a
private-key signer (viem). Python plays the other parts with the real clients over HTTP:
providers (``kizuna.client.provider.ProviderClient`` on ``ApiService``) and the same patient
(``kizuna.client.patient.PatientClient`` with the same private key, so the same derived keys).

(a) a record added in TS is read by a Python provider after a TS grant, byte-equal;
(b) a record the Python patient added opens with TS readOwn (and is labelled by TS);
(c) a TS revoke refuses the provider's next read; the remaining grantee gets the new epoch;
(d) a streamed addFile of a few MB round-trips, memory flat;
(e) "send it myself" (gasless=false): the grant is the patient's own transaction;
(b') readOwn checks the chain's commitment: a service that serves another of the patient's
    records in place of the one asked for (and says so in the list) is caught;
(f) failures name their field: a bad provider address, an unregistered provider, a stale
    key epoch.
And the generated scope vocabulary (web/src/patient/vocabulary.json) is not stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "api"))

from apienv import ApiServer, ChainEnv, deploy_env, settings_for  # noqa: E402

from kizuna.chain.localnode import LocalNode, free_port  # noqa: E402
from kizuna.chain.signers import LocalKeySigner  # noqa: E402
from kizuna.client.api_service import ApiService  # noqa: E402
from kizuna.client.http import ApiClient  # noqa: E402
from kizuna.client.keys import vocabulary_json  # noqa: E402
from kizuna.client.patient import PatientClient  # noqa: E402
from kizuna.client.provider import ProviderClient  # noqa: E402
from kizuna.errors import AccessDenied  # noqa: E402
from kizuna.tls import http_client  # noqa: E402

CLI = ROOT / "web" / "test" / "patient_cli.ts"
VOCABULARY = ROOT / "web" / "src" / "patient" / "vocabulary.json"
FHIR = "application/fhir+json"

pytestmark = [pytest.mark.node, pytest.mark.anvil]


def test_the_generated_vocabulary_is_current() -> None:
    assert VOCABULARY.read_text(encoding="utf-8") == vocabulary_json(), (
        "web/src/patient/vocabulary.json is stale: "
        "python -m kizuna.client.keys web/src/patient/vocabulary.json")


# --- the stack ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    with LocalNode(log_path=tmp_path_factory.mktemp("anvil") / "anvil.log") as started:
        yield started


@pytest.fixture(scope="module")
def env(node: LocalNode, tmp_path_factory: pytest.TempPathFactory) -> ChainEnv:
    return deploy_env(node, tmp_path_factory.mktemp("deployment"))


@pytest.fixture(scope="module")
def server(env: ChainEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    data = tmp_path_factory.mktemp("api")
    started = ApiServer(settings=settings_for(env, data, port=free_port()),
                        log_path=data / "api.log").start()
    yield started
    started.stop()


@dataclass
class Provider:
    signer: LocalKeySigner
    client: ProviderClient
    service: ApiService


@pytest.fixture
def providers(env: ChainEnv, server: ApiServer) -> Iterator[list[Provider]]:
    """Two registered, signed-in Python providers."""
    made: list[Provider] = []
    for _ in range(2):
        signer = env.new_signer()
        api = ApiClient(server.url, timeout=60)
        service = ApiService(api, env.chain)
        client = ProviderClient(signer=signer, service=service, chain=env.chain)
        env.add_provider(signer, client.public_key.to_bytes())
        api.login(signer)
        made.append(Provider(signer, client, service))
    yield made
    for p in made:
        p.service.close()


@pytest.fixture
def patient_key(env: ChainEnv) -> str:
    key = "0x" + os.urandom(32).hex()
    env.fund(LocalKeySigner(key).address)
    return key


def _node() -> str:
    found = shutil.which("node", path=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert found, "no node on PATH: `. scripts/bootstrap.sh` puts Node 24 there"
    return found


def web_patient(server: ApiServer, env: ChainEnv, key: str, ops: list[dict[str, Any]], *,
                gasless: bool = True, base_url: str | None = None,
                stream_uploads: bool = True) -> dict[str, Any]:
    """Run the TS PatientClient (web/test/patient_cli.ts) with ``ops``; its JSON answer.
    ``base_url``: where it reaches the API (default: the server itself); ``stream_uploads``
    False: files are sent as a Blob, as browsers do over HTTP/1.1."""
    request = {"base_url": base_url or server.url, "rpc_url": env.node.rpc_url,
               "private_key": key, "gasless": gasless, "stream_uploads": stream_uploads,
               "ops": ops}
    # gc() in the CLI frees what the upload no longer holds; without concurrent sweeping the
    # freed buffers leave process.memoryUsage() before gc() returns, so the figure does not
    # depend on when a background thread gets a core.
    out = subprocess.run([_node(), "--expose-gc", "--no-concurrent-array-buffer-sweeping",
                          str(CLI)], input=json.dumps(request),
                         capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    answer: dict[str, Any] = json.loads(out.stdout)
    assert answer["address"] == LocalKeySigner(key).address
    for asked in answer["asked"]:  # every wallet request said what it is for, for people
        assert asked["purpose"]["title"] and len(asked["purpose"]["why"]) > 20, asked
    return answer


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in result, result
    return result


def python_patient(env: ChainEnv, server: ApiServer, key: str) -> tuple[PatientClient,
                                                                        ApiService]:
    signer = LocalKeySigner(key)
    api = ApiClient(server.url, timeout=60)
    service = ApiService(api, env.chain)
    api.login(signer)
    return PatientClient(signer=signer, service=service, chain=env.chain), service


def observation(value: float) -> bytes:
    return json.dumps({"resourceType": "Observation", "status": "final",
                       "code": {"text": "Glucose"}, "valueQuantity": {"value": value,
                       "unit": "mg/dL"}, "note": [{"text": "血糖 — 日本語"}]},
                      ensure_ascii=False).encode()


# --- (a) (b) (c): both ways, revoke and rekey ------------------------------------------------


def test_a_record_added_and_granted_in_ts_is_read_by_a_python_provider(
        env: ChainEnv, server: ApiServer, providers: list[Provider], patient_key: str) -> None:
    first, second = providers
    one, two, three = observation(101.5), observation(99), b"\x00\xff" * 500
    answer = web_patient(server, env, patient_key, [
        {"op": "addRecord", "content": one.hex(), "label": "Observation:laboratory",
         "content_type": FHIR},
        {"op": "addRecords", "items": [
            {"content": two.hex(), "label": "Observation:laboratory", "content_type": FHIR},
            {"content": three.hex(), "label": "Condition",
             "content_type": "application/octet-stream"}]},
        {"op": "grant", "provider": first.signer.address,
         "labels": ["Observation:laboratory", "Condition"], "expires_in": 3600},
        {"op": "grant", "provider": second.signer.address,
         "labels": ["Observation:laboratory"], "expires_in": 3600},
        {"op": "records"}, {"op": "grants"}])
    added, batch, granted, _, records, grants = answer["results"]
    patient = answer["address"]
    assert ok(batch)["progress"] == [[1, 2], [2, 2]]
    assert ok(granted)["kfrags_stored"] == 2
    rid_one, (rid_two, rid_three) = ok(added)["record_id"], batch["record_ids"]
    for rid, content in [(rid_one, one), (rid_two, two), (rid_three, three)]:
        assert first.client.read(patient=patient, record_id=bytes.fromhex(rid[2:])) == content
    assert second.client.read(patient=patient, record_id=bytes.fromhex(rid_one[2:])) == one
    with pytest.raises(AccessDenied):  # the second was granted laboratory results only
        second.client.read(patient=patient, record_id=bytes.fromhex(rid_three[2:]))
    labels = {r["record_id"]: r["label"] for r in ok(records)["value"]}
    assert labels == {rid_one: "Observation:laboratory", rid_two: "Observation:laboratory",
                      rid_three: "Condition"}
    created = [r["created_at"] for r in records["value"]]
    assert created == sorted(created, reverse=True)  # newest first
    assert {(g["provider"], g["label"]) for g in ok(grants)["value"]} == {
        (first.signer.address, "Observation:laboratory"), (first.signer.address, "Condition"),
        (second.signer.address, "Observation:laboratory")}
    kinds = [a["primaryType"] for a in answer["asked"] if a["kind"] == "typed"]
    assert kinds.count("RegisterRecord") == 3 and kinds.count("ScopeKeys") == 2

    # (c) revoke in TS: the provider's next read is refused; the one that keeps the scope
    # reads a record written after the revocation (new key epoch, fragments re-issued in TS).
    four = observation(140)
    after = web_patient(server, env, patient_key, [
        {"op": "revoke", "provider": first.signer.address, "label": "Observation:laboratory"},
        {"op": "addRecord", "content": four.hex(), "label": "Observation:laboratory",
         "content_type": FHIR},
        {"op": "reads"}])
    revoked, added_after, reads = after["results"]
    assert ok(revoked)["rekeyed"][0]["epoch"] == 1
    assert revoked["rekeyed"][0]["providers"] == [second.signer.address]
    assert ok(added_after)["epoch"] == 1
    with pytest.raises(AccessDenied):
        first.client.read(patient=patient, record_id=bytes.fromhex(rid_one[2:]))
    assert first.client.read(patient=patient, record_id=bytes.fromhex(rid_three[2:])) == three
    rid_four = bytes.fromhex(added_after["record_id"][2:])
    assert second.client.read(patient=patient, record_id=rid_four) == four
    assert second.client.read(patient=patient, record_id=bytes.fromhex(rid_one[2:])) == one
    assert {r["provider"] for r in ok(reads)["value"]} == {first.signer.address,
                                                           second.signer.address}

    # revokeAll in TS (the wallet's own transaction): nothing of the first is readable now.
    ended = web_patient(server, env, patient_key, [
        {"op": "revokeAll", "provider": first.signer.address}, {"op": "grants"},
        {"op": "attemptedReads"}])
    gone, left, attempted = ended["results"]
    assert ok(gone)["tx_hash"].startswith("0x")
    assert {g["provider"] for g in ok(left)["value"]} == {second.signer.address}
    assert ended["asked"][-1]["kind"] == "transaction"
    with pytest.raises(AccessDenied):
        first.client.read(patient=patient, record_id=bytes.fromhex(rid_three[2:]))
    assert any(a["provider"] == first.signer.address for a in ok(attempted)["value"]["attempts"])


def test_a_record_added_by_the_python_patient_opens_in_ts(
        env: ChainEnv, server: ApiServer, patient_key: str) -> None:
    patient, service = python_patient(env, server, patient_key)
    try:
        content = observation(77)
        record = patient.add_record(content, label="Observation:vital-signs", content_type=FHIR)
    finally:
        service.close()
    rid = "0x" + bytes(record.record_id).hex()
    answer = web_patient(server, env, patient_key, [
        {"op": "readOwn", "record_id": rid}, {"op": "records"},
        {"op": "scope", "label": "Observation:vital-signs"},
        {"op": "readOwn", "record_id": "0x" + "11" * 32}])
    read, records, scope, missing = answer["results"]
    assert bytes.fromhex(ok(read)["content"]) == content
    assert ok(records)["value"] == [{
        "record_id": rid, "scope_id": "0x" + bytes(record.scope_id).hex(), "epoch": 0,
        "commitment": "0x" + bytes(record.commitment).hex(), "size": record.size,
        "content_type": FHIR, "created_at": record.created_at,
        "label": "Observation:vital-signs"}]
    assert ok(scope)["scope_id"] == "0x" + bytes(record.scope_id).hex()  # same blinding
    assert missing["error"] == "InputError" and missing["field"] == "record_id"


# --- (b') the commitment readOwn checks is the chain's ------------------------------------------


@dataclass
class Swap:
    """What the lying front does: serve ``instead``'s envelope (and commitment) for ``asked``."""

    asked: str
    instead: str
    served: list[str] = field(default_factory=list)


def front(target: str, swap: Swap) -> ThreadingHTTPServer:
    """A man in the middle before the real API (HTTP/1.1, forwarding every request over a real
    connection) that swaps one record for another of the same patient."""
    upstream = http_client(target)  # one for every forwarded request

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            path = self.path
            if path == f"/patient/records/{swap.asked}/content":
                path = f"/patient/records/{swap.instead}/content"
                swap.served.append(path)
            skip = {"host", "content-length", "connection", "transfer-encoding"}
            answer = upstream.request(self.command, target + path, content=body, timeout=60,
                                      headers={k: v for k, v in self.headers.items()
                                            if k.lower() not in skip})
            data = answer.content
            if self.command == "GET" and path.split("?")[0] == "/patient/records":
                listed = answer.json()
                by_id = {r["record_id"]: r for r in listed}
                by_id[swap.asked]["commitment"] = by_id[swap.instead]["commitment"]
                data = json.dumps(listed).encode()
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in skip | {"content-encoding", "date", "server"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_read_own_refuses_another_record_served_in_its_place(
        env: ChainEnv, server: ApiServer, patient_key: str) -> None:
    one, two = observation(1.0), observation(2.0)
    added = web_patient(server, env, patient_key, [
        {"op": "addRecord", "content": c.hex(), "label": "Observation:laboratory",
         "content_type": FHIR} for c in (one, two)])["results"]
    asked, instead = ok(added[0])["record_id"], ok(added[1])["record_id"]
    swap = Swap(asked=asked, instead=instead)
    lying = front(server.url, swap)
    port = lying.server_address[1]
    try:
        answer = web_patient(server, env, patient_key, base_url=f"http://127.0.0.1:{port}", ops=[
            {"op": "readOwn", "record_id": asked}, {"op": "readOwn", "record_id": instead}])
    finally:
        lying.shutdown()
        lying.server_close()
    refused, honest = answer["results"]
    assert swap.served, "the front did not swap anything"
    assert refused["error"] == "IntegrityError", refused
    assert "commitment" in refused["message"]
    assert bytes.fromhex(ok(honest)["content"]) == two


# --- (d) a streamed file -------------------------------------------------------------------


def test_a_streamed_file_of_a_few_mb_round_trips(
        env: ChainEnv, server: ApiServer, providers: list[Provider], patient_key: str,
        tmp_path: Path) -> None:
    size = 12 * 1024 * 1024 + 12345
    content = os.urandom(size)
    path = tmp_path / "scan.pdf"
    path.write_bytes(content)
    answer = web_patient(server, env, patient_key, [
        {"op": "addFile", "path": str(path), "label": "DocumentReference",
         "content_type": "application/pdf"},
        {"op": "grant", "provider": providers[0].signer.address,
         "labels": ["DocumentReference"], "expires_in": 600}])
    added, granted = answer["results"]
    ok(granted)
    assert ok(added)["size"] > size  # the envelope: preamble and a tag per segment
    assert added["last_progress"] == [added["size"], added["size"]]
    assert added["progress_calls"] >= 7  # one per 1 MiB segment at least
    # Flat: the upload holds about two 1 MiB segments (2.3 MiB measured, the same figure under
    # load), never the file (12 MiB) nor its envelope whole.
    assert added["peak_array_buffers"] < 4 * 1024 * 1024, added["peak_array_buffers"]
    rid = bytes.fromhex(added["record_id"][2:])
    assert providers[0].client.read(patient=answer["address"], record_id=rid) == content
    patient, service = python_patient(env, server, patient_key)
    try:
        assert patient.read_own(rid) == content
    finally:
        service.close()
    [opened] = web_patient(server, env, patient_key, [
        {"op": "openOwn", "record_id": added["record_id"]}])["results"]
    assert ok(opened)["size"] == size and opened["content_type"] == "application/pdf"
    assert opened["sha256"] == hashlib.sha256(content).hexdigest()
    # The browser's way over HTTP/1.1 (no streamed request bodies): the second pass as a Blob.
    small = os.urandom(2 * 1024 * 1024 + 3)
    path.write_bytes(small)
    [as_blob] = web_patient(server, env, patient_key, [
        {"op": "addFile", "path": str(path), "label": "DocumentReference",
         "content_type": "image/png"}], stream_uploads=False)["results"]
    assert ok(as_blob)["last_progress"] == [as_blob["size"], as_blob["size"]], as_blob
    blob_id = bytes.fromhex(as_blob["record_id"][2:])
    assert providers[0].client.read(patient=answer["address"], record_id=blob_id) == small


# --- (e) send it myself ----------------------------------------------------------------------


def test_send_it_myself_grants_with_the_patients_own_transaction(
        env: ChainEnv, server: ApiServer, providers: list[Provider], patient_key: str) -> None:
    content = observation(5.4)
    answer = web_patient(server, env, patient_key, [
        {"op": "addRecord", "content": content.hex(), "label": "Observation:laboratory",
         "content_type": FHIR},
        {"op": "grant", "provider": providers[0].signer.address,
         "labels": ["Observation:laboratory"], "expires_in": 3600},
        {"op": "providers"}, {"op": "inbox"}], gasless=False)
    added, granted, registry, inbox = answer["results"]
    listed = {p["address"]: p for p in ok(registry)["value"]}
    for p in providers:  # the registry as the chain has it (the API has no registry route)
        assert listed[p.signer.address]["active"] is True
        assert listed[p.signer.address]["umbralPublicKey"] == (
            "0x" + p.client.public_key.to_bytes().hex())
    assert ok(inbox)["value"] == []
    patient = answer["address"]
    for tx in (ok(granted)["tx_hash"],):
        sent = env.chain.w3.eth.get_transaction(tx)
        assert sent["from"] == patient  # not the relayer: the patient paid
    assert [a["kind"] for a in answer["asked"]].count("transaction") == 2  # register + grant
    assert "RegisterRecord" not in [a.get("primaryType") for a in answer["asked"]]
    rid = bytes.fromhex(ok(added)["record_id"][2:])
    assert providers[0].client.read(patient=patient, record_id=rid) == content


# --- (f) failures name their field -------------------------------------------------------------


def test_failures_name_their_field(env: ChainEnv, server: ApiServer, providers: list[Provider],
                                   patient_key: str) -> None:
    stranger = LocalKeySigner.generate().address
    content = observation(1)
    answer = web_patient(server, env, patient_key, [
        {"op": "grant", "provider": "0x1234", "labels": ["Condition"], "expires_in": 60},
        {"op": "grant", "provider": stranger, "labels": ["Condition"], "expires_in": 60},
        {"op": "grant", "provider": providers[0].signer.address, "labels": ["condition"],
         "expires_in": 60},
        {"op": "grant", "provider": providers[0].signer.address, "labels": [],
         "expires_in": 60},
        {"op": "addRecord", "content": content.hex(), "label": "Condition",
         "content_type": FHIR},
        {"op": "grant", "provider": providers[0].signer.address, "labels": ["Condition"],
         "expires_in": 3600},
        {"op": "revoke", "provider": providers[0].signer.address, "label": "Condition"},
        {"op": "addRecord", "content": content.hex(), "label": "Condition",
         "content_type": FHIR, "epoch": 0},
        {"op": "revoke", "provider": "not an address", "label": "Condition"},
        {"op": "grant", "provider": providers[0].signer.address, "labels": ["Condition"],
         "expires_in": -60}])
    bad, unknown, label, empty, _, _, _, stale, bad_revoke, past = answer["results"]
    assert past["field"] == "expires_at" and "already past" in past["message"]
    assert bad["error"] == "InputError" and bad["field"] == "provider", bad
    assert "not an Ethereum address" in bad["message"]
    assert unknown["field"] == "provider" and "not a provider in the registry" in unknown[
        "message"]
    assert label["field"] == "labels[0]" and "did you mean 'Condition'" in label["message"]
    assert empty["field"] == "labels"
    assert stale["error"] == "KeyEpochMoved" and stale["field"] == "epoch", stale
    assert "key version 1" in stale["message"]
    assert bad_revoke["field"] == "provider"
