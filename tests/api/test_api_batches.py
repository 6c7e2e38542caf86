"""Batch registration over HTTP against the real API (uvicorn), anvil, the embedded store and
SQLite: POST /patient/staged (framed, streamed), GET /patient/staged, POST /patient/batches,
GET /patient/batches/{root}/manifest, POST /wallet/prepare/register-batch — the client seam
(ApiService) end to end, and every refusal with its status and field."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from apienv import ApiServer, ChainEnv, bearer
from participants import People, hx

from kizuna.batch import BatchLeaf, BatchManifest
from kizuna.chain.eip712 import SignedAction
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.http import ApiClient
from kizuna.client.patient import PatientClient
from kizuna.types import RecordId
from kizuna.wire.batches import StagedEnvelope, StagedInfo, frame_envelopes

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test's patient is
its own and nothing else relays while it counts the relayer's transactions."""

LABEL = "Observation:laboratory"


@pytest.fixture
def client(api_server: ApiServer, chain_env: ChainEnv) -> Iterator[PatientClient]:
    """A patient on the client seam over the API (what the importer uses)."""
    signer = chain_env.new_signer()
    api = ApiClient(client=httpx.Client(base_url=api_server.url, timeout=120))
    service = ApiService(api, chain_env.chain)
    api.login(signer)
    try:
        yield PatientClient(signer=signer, service=service, chain=chain_env.chain)
    finally:
        service.close()


def _sealed(patient: PatientClient, count: int, *, start: int = 0) -> list[StagedEnvelope]:
    epoch = patient.scope_and_epoch(LABEL)[1]
    items = []
    for i in range(start, start + count):
        body = json.dumps({"resourceType": "Observation", "id": f"lab{i}"}).encode()
        rid, sid, envelope = patient.seal(body, label=LABEL,
                                          content_type="application/fhir+json")
        items.append(StagedEnvelope(rid, sid, epoch, envelope))
    return items


def _manifest(items: list[StagedEnvelope], infos: list[StagedInfo]) -> BatchManifest:
    return BatchManifest.of(BatchLeaf(i.record_id, i.scope_id, s.commitment)
                            for i, s in zip(items, infos, strict=True))


def _token(patient: PatientClient) -> dict[str, str]:
    service = patient.service
    assert isinstance(service, ApiService) and service.api.session is not None
    return bearer(service.api.session.token)


def _http(patient: PatientClient) -> httpx.Client:
    service = patient.service
    assert isinstance(service, ApiService)
    return service.api.http


def _stage_raw(patient: PatientClient, body: bytes | Iterator[bytes]) -> httpx.Response:
    return _http(patient).post("/patient/staged", content=body, headers={
        **_token(patient), "Content-Type": "application/octet-stream"})


def _batch_raw(patient: PatientClient, manifest: BatchManifest | str,
               registration: SignedAction | dict[str, Any]) -> httpx.Response:
    if isinstance(registration, SignedAction):
        registration = {"signed": {"typed_data": registration.typed.to_json(),
                                   "signature": hx(registration.signature)}}
    encoded = (manifest if isinstance(manifest, str)
               else base64.b64encode(manifest.encode()).decode())
    return _http(patient).post("/patient/batches", headers=_token(patient),
                               json={"manifest": encoded, "registration": registration})


def _error(answer: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = answer.json()["error"]
    return error


def test_a_thousand_records_staged_in_two_requests_and_registered_once(
        client: PatientClient, chain_env: ChainEnv, api_server: ApiServer) -> None:
    items = _sealed(client, 1000)
    service = client.service
    infos = (service.stage_envelopes(patient=client.address, items=items[:500])
             + service.stage_envelopes(patient=client.address, items=items[500:]))
    assert [s.record_id for s in infos] == [i.record_id for i in items]
    assert service.staged_ids(patient=client.address) == {i.record_id for i in items}
    manifest = _manifest(items, infos)
    relayer = chain_env.chain.w3.eth.account.from_key(chain_env.relayer_key).address
    nonce = chain_env.chain.w3.eth.get_transaction_count(relayer)
    info = service.register_batch(patient=client.address, manifest=manifest,
                                  registration=client.sign_batch_registration(manifest))
    assert chain_env.chain.w3.eth.get_transaction_count(relayer) == nonce + 1
    assert (info.root, info.count) == (manifest.root, 1000)
    status = chain_env.chain.ledger.batch_of(manifest.root)
    assert status is not None and status.patient == client.address
    assert service.staged_ids(patient=client.address) == set()
    listed = service.list_records(patient=client.address)
    assert len(listed) == 1000 and {r.batch_root for r in listed} <= {manifest.root, None}
    # the envelopes read back byte for byte through the bulk download
    wanted = [i.record_id for i in items[:256]]
    got = dict(service.own_envelopes(patient=client.address, record_ids=wanted))
    assert all(got[i.record_id] == i.envelope for i in items[:256])
    manifest_bytes = _http(client).get(f"/patient/batches/{hx(manifest.root)}/manifest",
                                       headers=_token(client))
    assert manifest_bytes.status_code == 200 and manifest_bytes.content == manifest.encode()
    # the same request again after a lost answer: the same batch, no second transaction
    again = _batch_raw(client, manifest, client.sign_batch_registration(manifest))
    assert again.status_code == 201, again.text
    assert again.json()["tx_hash"] == hx(info.tx_hash)
    assert chain_env.chain.w3.eth.get_transaction_count(relayer) == nonce + 1


def test_a_wallet_registers_a_batch_and_a_lost_answer_is_finished(
        client: PatientClient, chain_env: ChainEnv) -> None:
    items = _sealed(client, 3)
    manifest = _manifest(items, client.service.stage_envelopes(patient=client.address,
                                                               items=items))
    prepared = _http(client).post("/wallet/prepare/register-batch", headers=_token(client),
                                  json={"root": hx(manifest.root), "count": 3,
                                        "deadline": client.service.chain_time() + 600})
    assert prepared.status_code == 200, prepared.text
    body = prepared.json()
    assert body["action"] == "registerBatch" and body["typed_data"]["primaryType"] == \
        "RegisterBatch"
    w3 = chain_env.chain.w3
    params = body["transaction"]
    tx = {"to": params["to"], "data": params["data"], "value": 0,
          "gas": int(params["gas"], 16), "maxFeePerGas": int(params["maxFeePerGas"], 16),
          "maxPriorityFeePerGas": int(params["maxPriorityFeePerGas"], 16),
          "chainId": int(params["chainId"], 16), "type": 2,
          "nonce": w3.eth.get_transaction_count(client.address, "pending")}
    assert isinstance(client.signer, LocalKeySigner)
    sent = hx(bytes(w3.eth.send_raw_transaction(client.signer.sign_transaction(tx))))
    done = _batch_raw(client, manifest, {"tx_hash": sent})
    assert done.status_code == 201, done.text
    assert done.json()["tx_hash"] == sent and done.json()["count"] == 3

    # someone else submitted the patient's signed batch (an answer the service never got)
    more = _sealed(client, 2, start=10)
    second = _manifest(more, client.service.stage_envelopes(patient=client.address,
                                                            items=more))
    signed = client.sign_batch_registration(second)
    stranger = chain_env.new_signer()
    receipt = chain_env.chain.sender.transact(chain_env.chain.ledger.by_sig_call(signed),
                                              stranger)
    finished = _batch_raw(client, second, signed)
    assert finished.status_code == 201, finished.text
    assert finished.json()["tx_hash"] == hx(bytes(receipt.tx_hash))
    assert len(client.service.list_records(patient=client.address)) == 5


def test_bad_frames_are_422_naming_the_envelope_and_field(client: PatientClient) -> None:
    items = _sealed(client, 3)
    good = b"".join(frame_envelopes(items))
    first = len(b"".join(frame_envelopes(items[:1])))

    cut_head = _stage_raw(client, good[:first + 40])
    assert cut_head.status_code == 422 and _error(cut_head)["field"] == "envelopes[1]", \
        cut_head.text
    cut_body = _stage_raw(client, good[:first + 80 + 10])
    assert cut_body.status_code == 422, cut_body.text
    assert _error(cut_body)["field"] == "envelopes[1].envelope"
    huge = bytes(items[0].record_id) + bytes(items[0].scope_id) + bytes(8) + b"\xff" * 8
    too_large = _stage_raw(client, huge + b"x" * 100)
    assert too_large.status_code == 413 and _error(too_large)["field"] == "envelopes[0].length"
    swapped = b"".join(frame_envelopes([items[0], StagedEnvelope(
        items[1].record_id, items[1].scope_id, items[1].epoch, items[2].envelope)]))
    wrong = _stage_raw(client, swapped)
    assert wrong.status_code == 422 and _error(wrong)["field"] == "envelopes[1].envelope"
    old_epoch = _stage_raw(client, b"".join(frame_envelopes([StagedEnvelope(
        items[0].record_id, items[0].scope_id, 5, items[0].envelope)])))
    assert old_epoch.status_code == 409 and "envelopes[0]" in _error(old_epoch)["message"]
    empty = _stage_raw(client, b"")
    assert empty.status_code == 422 and _error(empty)["field"] == "body"
    noise = _stage_raw(client, os.urandom(5000))
    assert noise.status_code in (413, 422), noise.text  # never a crash
    streamed = _stage_raw(client, (good[i:i + 1000] for i in range(0, len(good), 1000)))
    assert streamed.status_code == 201 and len(streamed.json()) == 3  # chunked: fine
    anonymous = _http(client).post("/patient/staged", content=good)
    assert anonymous.status_code == 401
    listed = _http(client).get("/patient/staged", headers=_token(client))
    assert sorted(listed.json()["record_ids"]) == sorted(hx(i.record_id) for i in items)


def test_registration_refusals_keep_the_envelopes_staged(client: PatientClient,
                                                         people: People) -> None:
    items = _sealed(client, 3)
    infos = client.service.stage_envelopes(patient=client.address, items=items)
    manifest = _manifest(items, infos)
    signed = client.sign_batch_registration(manifest)

    for bad in ("@@@", "\x80é"):
        not_base64 = _batch_raw(client, bad, signed)
        assert not_base64.status_code == 422 and _error(not_base64)["field"] == "manifest"
    garbage = _batch_raw(client, base64.b64encode(b"KZBATCH\x01\x00\x00").decode(), signed)
    assert garbage.status_code == 422 and _error(garbage)["field"] == "manifest"
    stray = BatchManifest.of([*manifest.leaves, BatchLeaf(
        RecordId(os.urandom(32)), items[0].scope_id, infos[0].commitment)])
    unknown = _batch_raw(client, stray, client.sign_batch_registration(stray))
    assert unknown.status_code == 422 and _error(unknown)["field"] == "leaves[3].record_id"
    smaller = _manifest(items[:2], infos[:2])
    wrong_root = _batch_raw(client, manifest, client.sign_batch_registration(smaller))
    assert wrong_root.status_code == 422 and _error(wrong_root)["field"] == "signature"
    expired = _batch_raw(client, manifest, client.sign_batch_registration(
        manifest, deadline=client.service.chain_time() - 10))
    assert expired.status_code == 422 and "Expired" in _error(expired)["message"], expired.text
    neither = _batch_raw(client, manifest, {})
    assert neither.status_code == 422 and _error(neither)["field"] == "authorization"
    too_big = _http(client).post("/patient/batches", headers={
        **_token(client), "Content-Type": "application/json"},
        content=b'{"manifest": "' + b"A" * (15 << 20) + b'"}')
    assert too_big.status_code == 413
    deep = _http(client).post("/patient/batches", headers={
        **_token(client), "Content-Type": "application/json"}, content=b"[" * 100_000)
    assert deep.status_code == 422
    assert client.service.staged_ids(patient=client.address) == {i.record_id for i in items}
    assert client.service.list_records(patient=client.address) == []

    done = _batch_raw(client, manifest, signed)
    assert done.status_code == 201, done.text
    root = hx(manifest.root)
    stranger = people.patient.get(f"/patient/batches/{root}/manifest")
    assert stranger.status_code == 403
    auditor = people.auditor.get(f"/patient/batches/{root}/manifest")
    assert auditor.status_code == 200 and auditor.content == manifest.encode()
    nothing = people.auditor.get(f"/patient/batches/{hx(os.urandom(32))}/manifest")
    assert nothing.status_code == 404
    # the records are records now: staging one of their ids again is a conflict naming it
    again = _stage_raw(client, b"".join(frame_envelopes(items[:1])))
    assert again.status_code == 409 and "envelopes[0]" in _error(again)["message"]
