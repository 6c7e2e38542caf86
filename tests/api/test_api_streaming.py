"""Uploads and downloads stream: a 500 MB envelope (a DICOM study's size) goes through the real
server and back while the server's peak resident memory (``VmHWM`` of the uvicorn process)
stays flat; a body over the configured limit is refused with 413."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apienv import ApiServer, ChainEnv, own_module_settings, settings_for
from fastapi.testclient import TestClient
from participants import HttpPatient, People, Sealed, hx

from kizuna.api.app import create_app
from kizuna.chain.localnode import free_port
from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.services.context import close_context, open_context
from kizuna.storage.envelope import encrypt_to
from kizuna.types import RecordId

pytestmark = pytest.mark.anvil

SIZE = 500 * 1024 * 1024
CHUNK = 1 << 20
FLAT_MIB = 64
"""How much the server's peak memory may grow while 500 MB pass through it."""

SHARED_STACK = True
"""A deployment and an API of the module's own (``module_settings``; tests/api/apienv.py,
shares_stack): the 500 MB test measures that server's peak memory as growth from its
own start, which another module's uploads must not have raised already. Each test its own
wallet; the limit test runs an app of its own in process with its own settings."""


@pytest.fixture(scope="module")
def module_settings(module_chain_env: ChainEnv,
                    tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return own_module_settings(module_chain_env, tmp_path_factory)


def _plaintext() -> Iterator[bytes]:
    block = os.urandom(CHUNK)
    for _ in range(SIZE // CHUNK):
        yield block


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


@pytest.mark.slow
def test_500_mb_round_trip_in_constant_memory(people: People, api_server: ApiServer,
                                              tmp_path: Path) -> None:
    patient = people.patient
    sid = patient.scope("ImagingStudy")
    rid = RecordId(os.urandom(32))
    envelope_path = tmp_path / "study.envelope"
    with envelope_path.open("wb") as out:
        sealed_info = encrypt_to(_plaintext(), out, owner_key=patient.keys.scope_public(sid),
                                 record_id=rid, content_type="application/dicom")
    assert sealed_info.size > SIZE
    sealed = Sealed(rid, sid, b"", b"", "application/dicom")
    registration = patient.registration(sealed, commitment=sealed_info.commitment)

    before = api_server.proc_status("VmHWM")
    answer = patient.upload(sealed, body=_file_chunks(envelope_path), registration=registration)
    assert answer.status_code == 201, answer.text
    assert answer.json()["size"] == sealed_info.size
    after_upload = api_server.proc_status("VmHWM")
    assert after_upload - before < FLAT_MIB, (before, after_upload)

    digest = hashlib.sha256()
    received = 0
    with patient.http.stream("GET", f"/patient/records/{hx(rid)}/content",
                             headers=patient.auth) as download:
        assert download.status_code == 200
        for chunk in download.iter_bytes(CHUNK):
            digest.update(chunk)
            received += len(chunk)
    assert received == sealed_info.size
    assert digest.digest() == sealed_info.commitment  # the commitment is the SHA-256
    after_download = api_server.proc_status("VmHWM")
    assert after_download - before < FLAT_MIB, (before, after_download)
    envelope_path.unlink()


def test_body_over_the_limit_is_413(chain_env: ChainEnv, tmp_path: Path) -> None:
    settings = settings_for(chain_env, tmp_path, port=free_port(), max_upload_bytes=4096)
    ctx = open_context(settings)
    try:
        app = create_app(settings, ctx=ctx)
        with TestClient(app, base_url=f"http://127.0.0.1:{settings.api_port}") as client:
            patient = HttpPatient(signer=LocalKeySigner.generate(), chain=chain_env.chain,
                                  http=client).login()  # type: ignore[arg-type]
            sealed = patient.seal(os.urandom(20_000), label="Condition",
                                  content_type="text/plain")
            # declared too long: refused before reading
            answer = patient.upload(sealed)
            assert answer.status_code == 413, answer.text
            assert answer.json()["error"]["field"] == "body"
            # not declared (chunked): refused once the count passes the limit

            def chunks() -> Iterator[bytes]:
                view = memoryview(sealed.envelope)
                for start in range(0, len(view), 1000):
                    yield bytes(view[start:start + 1000])

            answer = patient.upload(sealed, body=chunks())
            assert answer.status_code == 413, answer.text
            assert patient.get("/patient/records").json() == []
            # within the limit: accepted
            small = patient.seal(b"ok", label="Condition", content_type="text/plain")
            assert patient.upload(small).status_code == 201
    finally:
        close_context(ctx)


def test_upload_errors_name_the_field(people: People, api_server: ApiServer) -> None:
    patient = people.patient
    sealed = patient.seal(b"x", label="Condition", content_type="text/plain")
    bad = httpx.put(f"{api_server.url}/patient/records/{hx(sealed.record_id)}",
                    content=sealed.envelope,
                    headers={**patient.auth, "X-Kizuna-Scope-Id": "0x12",
                             "X-Kizuna-Registration": "{}"})
    assert bad.status_code == 422 and "X-Kizuna-Scope-Id" in bad.json()["error"]["field"]
    answer = patient.upload(sealed, registration='{"tx_hash": "nope"}')
    assert answer.status_code == 422
    answer = patient.upload(sealed, body=b"not an envelope at all")
    assert answer.status_code == 422, answer.text
    # a record id already registered: 409
    assert patient.upload(sealed).status_code == 201
    assert patient.upload(sealed).status_code == 409
