"""Chunked uploads (kizuna/services/uploads.py, kizuna/api/routes/uploads.py) against the real
API on anvil: an envelope sent as parts, in order, then registered exactly as a single upload
is; parts out of order, too large, too small or past the declared size refused; a dropped part
resumed; another patient's session 404; abort and the sweep release the parts."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apienv import ApiServer, ChainEnv
from participants import HttpPatient, People, Sealed, hx

from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.http import ApiClient
from kizuna.client.patient import PatientClient
from kizuna.config import Settings
from kizuna.db.schema import upload_parts, upload_sessions
from kizuna.services.context import close_context, open_context
from kizuna.services.uploads import MIN_PART_SIZE, sweep_uploads
from kizuna.wire.records import PART_SIZE

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test's sessions
are its own patient's; the sweep test, which counts every session, asks for its own."""

MIB = 1 << 20


def _start(patient: HttpPatient, sealed: Sealed, *, size: int | None = None,
           epoch: int = 0) -> httpx.Response:
    return patient.post("/patient/uploads", {
        "record_id": hx(sealed.record_id), "scope_id": hx(sealed.scope_id), "epoch": epoch,
        "size": len(sealed.envelope) if size is None else size})


def _part(patient: HttpPatient, upload_id: str, n: int, body: Any) -> httpx.Response:
    return patient.http.put(f"/patient/uploads/{upload_id}/parts/{n}", content=body,
                            headers={**patient.auth, "Content-Type": "application/octet-stream"})


def _complete(patient: HttpPatient, upload_id: str, registration: str) -> httpx.Response:
    return patient.post(f"/patient/uploads/{upload_id}/complete",
                        {"registration": json.loads(registration)})


def _status(patient: HttpPatient, upload_id: str) -> httpx.Response:
    return patient.get(f"/patient/uploads/{upload_id}")


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def _sealed(patient: HttpPatient, megabytes: int) -> Sealed:
    return patient.seal(os.urandom(megabytes * MIB), label="DocumentReference",
                        content_type="application/pdf")


def test_parts_in_order_register_as_one_upload(people: People) -> None:
    patient = people.patient
    sealed = _sealed(patient, 20)
    started = _start(patient, sealed)
    assert started.status_code == 201, started.text
    session = started.json()
    assert (session["part_size"], session["min_part_size"]) == (PART_SIZE, MIN_PART_SIZE)
    assert (session["parts"], session["received"]) == (0, 0)
    uid = session["upload_id"]
    parts = _pieces(sealed.envelope, PART_SIZE)
    assert len(parts) == 3
    # out of order: refused, naming the part expected
    early = _part(patient, uid, 1, parts[1])
    assert early.status_code == 409 and "expects part 0" in early.text
    for n, part in enumerate(parts):
        if n == len(parts) - 1:  # before the last part, nothing to register yet
            missing = _complete(patient, uid, patient.registration(sealed))
            assert missing.status_code == 409 and f"send part {n}" in missing.text
        answer = _part(patient, uid, n, part)
        assert answer.status_code == 200, answer.text
        assert answer.json()["parts"] == n + 1
    assert _status(patient, uid).json()["received"] == len(sealed.envelope)
    # a registration for another commitment: refused as the single upload refuses it, and
    # the session is kept for a good one
    bad = _complete(patient, uid, patient.registration(sealed, commitment=bytes(32)))
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "signature", bad.text
    done = _complete(patient, uid, patient.registration(sealed))
    assert done.status_code == 201, done.text
    assert done.json()["size"] == len(sealed.envelope)
    assert done.json()["content_type"] == "application/pdf"
    stored = patient.get(f"/patient/records/{hx(sealed.record_id)}/content")
    assert stored.content == sealed.envelope
    assert _status(patient, uid).status_code == 404  # the session is gone
    # the record id is taken now: a new session for it is refused at its start
    assert _start(patient, sealed).status_code == 409


def test_part_sizes_are_bounded(people: People) -> None:
    patient = people.patient
    sealed = _sealed(patient, 10)
    uid = _start(patient, sealed).json()["upload_id"]
    too_big = _part(patient, uid, 0, sealed.envelope[:PART_SIZE + 1])
    assert too_big.status_code == 413, too_big.text
    too_small = _part(patient, uid, 0, sealed.envelope[:MIN_PART_SIZE - 1])
    assert too_small.status_code == 422 and too_small.json()["error"]["field"] == "part"
    empty = _part(patient, uid, 0, b"")
    assert empty.status_code == 422
    assert _part(patient, uid, 0, sealed.envelope[:PART_SIZE]).status_code == 200
    # the rest plus one byte passes the declared size
    past = _part(patient, uid, 1, sealed.envelope[PART_SIZE:] + b"x")
    assert past.status_code == 422 and past.json()["error"]["field"] == "part", past.text
    assert _status(patient, uid).json()["parts"] == 1  # nothing of the refused parts kept
    assert _part(patient, uid, 1, sealed.envelope[PART_SIZE:]).status_code == 200
    assert _complete(patient, uid, patient.registration(sealed)).status_code == 201


def test_hostile_session_starts(people: People, settings: Settings) -> None:
    patient = people.patient
    sealed = _sealed(patient, 1)
    for size in (0, -1, 1.5, 1 << 63):
        answer = _start(patient, sealed, size=size)  # type: ignore[arg-type]
        assert answer.status_code == 422, (size, answer.text)
    over = _start(patient, sealed, size=settings.max_upload_bytes + 1)
    assert over.status_code == 413, over.text
    assert _start(patient, sealed, epoch=3).status_code == 409  # not the scope's epoch
    bad_id = patient.post("/patient/uploads", {"record_id": "0x12", "scope_id":
                          hx(sealed.scope_id), "size": 10})
    assert bad_id.status_code == 422 and "record_id" in bad_id.text
    ids = [_start(patient, _sealed(patient, 1)).json()["upload_id"] for _ in range(4)]
    fifth = _start(patient, sealed)
    assert fifth.status_code == 409 and "uploads open" in fifth.text
    assert patient.http.delete(f"/patient/uploads/{ids[0]}",
                               headers=patient.auth).status_code == 204
    assert _start(patient, sealed).status_code == 201
    for uid in ("nothex" * 5 + "ab", "0" * 31):
        assert _status(patient, uid).status_code in (404, 422)


def test_a_dropped_part_is_resumed(people: People) -> None:
    patient = people.patient
    sealed = _sealed(patient, 12)
    uid = _start(patient, sealed).json()["upload_id"]
    parts = _pieces(sealed.envelope, PART_SIZE)
    assert _part(patient, uid, 0, parts[0]).status_code == 200

    def dropped() -> Iterator[bytes]:  # the connection fails half-way through part 1
        yield parts[1][:MIB]
        raise ConnectionError("the network went away")

    with pytest.raises((ConnectionError, httpx.HTTPError)):
        _part(patient, uid, 1, dropped())
    status = _status(patient, uid).json()
    assert (status["parts"], status["received"]) == (1, PART_SIZE)  # nothing of it kept
    assert _part(patient, uid, 1, parts[1]).status_code == 200
    # its answer lost, the client sends part 1 again: told it is stored, it asks and goes on
    again = _part(patient, uid, 1, parts[1])
    assert again.status_code == 409 and "expects part 2" in again.text
    assert _status(patient, uid).json()["received"] == len(sealed.envelope)
    assert _complete(patient, uid, patient.registration(sealed)).status_code == 201


def test_another_patients_session_is_not_found(people: People) -> None:
    patient = people.patient
    sealed = _sealed(patient, 2)
    uid = _start(patient, sealed).json()["upload_id"]
    other = HttpPatient(signer=LocalKeySigner.generate(), chain=patient.chain,
                        http=patient.http).login()
    assert isinstance(other, HttpPatient)
    assert _status(other, uid).status_code == 404
    assert _part(other, uid, 0, sealed.envelope).status_code == 404
    assert _complete(other, uid, patient.registration(sealed)).status_code == 404
    assert other.http.delete(f"/patient/uploads/{uid}", headers=other.auth).status_code == 404
    unauthenticated = patient.http.get(f"/patient/uploads/{uid}")
    assert unauthenticated.status_code == 401
    # the owner's session is untouched by all that
    assert _part(patient, uid, 0, sealed.envelope).status_code == 200
    assert _complete(patient, uid, patient.registration(sealed)).status_code == 201


def test_abort_and_sweep_release_the_parts(fresh_stack: None, people: People,
                                           api_server: ApiServer, settings: Settings) -> None:
    patient = people.patient
    aborted, abandoned = _sealed(patient, 2), _sealed(patient, 2)
    first = _start(patient, aborted).json()["upload_id"]
    second = _start(patient, abandoned).json()["upload_id"]
    assert _part(patient, first, 0, aborted.envelope).status_code == 200
    assert _part(patient, second, 0, abandoned.envelope[:MIB]).status_code == 200
    assert patient.http.delete(f"/patient/uploads/{first}",
                               headers=patient.auth).status_code == 204
    assert _status(patient, first).status_code == 404
    assert _part(patient, first, 1, b"x").status_code == 404
    ctx = open_context(settings)  # the service's database and store, as the sweeper sees them
    try:
        with ctx.db.read() as conn:
            cids = list(conn.execute(upload_parts.select()).all())
        assert [r.upload_id for r in cids] == [second]
        assert sweep_uploads(ctx, ttl_s=3600) == 0  # not stale yet
        assert sweep_uploads(ctx, ttl_s=3600, now=time.time() + 7200) == 1
        with ctx.db.read() as conn:
            assert conn.execute(upload_sessions.select()).all() == []
            assert conn.execute(upload_parts.select()).all() == []
    finally:
        close_context(ctx)
    assert _status(patient, second).status_code == 404
    # a fresh session for the swept record id starts over and registers
    uid = _start(patient, abandoned).json()["upload_id"]
    assert _part(patient, uid, 0, abandoned.envelope).status_code == 200
    assert _complete(patient, uid, patient.registration(abandoned)).status_code == 201


class _LoseOneAnswer(httpx.HTTPTransport):
    """A real transport that, once, sends part 1 of an upload to the service and then drops
    the answer (the service stored the part; the client never hears of it)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: list[str] = []
        self.requests: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(f"{request.method} {path}")
        response = super().handle_request(request)
        if path.endswith("/parts/1") and not self.lost:
            response.read()
            self.lost.append(f"{response.status_code}")
            raise httpx.ReadError("the connection dropped before the answer")
        return response


def test_python_client_uploads_a_large_file_in_parts(api_server: ApiServer, chain_env: ChainEnv,
                                                     tmp_path: Path) -> None:
    transport = _LoseOneAnswer()
    chain = chain_env.chain
    signer = chain_env.new_signer()
    api = ApiClient(client=httpx.Client(base_url=api_server.url, timeout=120,
                                        transport=transport))
    service = ApiService(api, chain)
    api.login(signer)
    try:
        client = PatientClient(signer=signer, service=service, chain=chain)
        content = os.urandom(20 * MIB)
        source = tmp_path / "scan.pdf"
        source.write_bytes(b"%PDF-1.4\n" + content)
        transport.requests.clear()
        info = client.add_file(source, label="DocumentReference", content_type="application/pdf")
        calls = [r for r in transport.requests if "/uploads" in r or "/records/" in r]
        uid = next(r for r in calls if "/parts/0" in r).split("/")[3]
        assert calls[0] == "POST /patient/uploads"
        assert calls.count(f"PUT /patient/uploads/{uid}/parts/1") == 1  # not sent twice...
        assert f"GET /patient/uploads/{uid}" in calls  # ...the session said it was stored
        assert [r for r in calls if "/parts/" in r] == [
            f"PUT /patient/uploads/{uid}/parts/{n}" for n in range(3)]
        assert calls[-1] == f"POST /patient/uploads/{uid}/complete"
        assert transport.lost == ["200"]
        assert client.read_own(info.record_id) == b"%PDF-1.4\n" + content
        # a small record still goes in one request
        transport.requests.clear()
        client.add_record(b"small", label="DocumentReference", content_type="text/plain")
        assert next(r for r in transport.requests if r.startswith("PUT")).startswith(
            "PUT /patient/records/")
        assert not [r for r in transport.requests if "/uploads" in r]
    finally:
        service.close()
