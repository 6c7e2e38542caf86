"""Issue #15, finding 5: JSON bodies are bounded before anyone signs in.

An anonymous 76 MiB body took the real API from 152 to 610 MiB. Now a JSON body over
``max_json_body_bytes`` (1 MiB) is answered 413 with the error body: at once when its
Content-Length says so, else as soon as the chunks received pass the limit — the server's RSS
(``/proc/PID/status`` of the uvicorn subprocess) does not grow by more than a few MiB. The
streamed routes keep their own limit (``max_upload_bytes``): a 3 MiB record still uploads.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
from collections.abc import Iterator

import httpx
import pytest
from apienv import ApiServer
from participants import People

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test its own
wallets; the setting's test starts its own API."""

HUGE = 76 * 1024 * 1024
FEW_MIB = 8.0
"""Allowed RSS growth: allocator noise, nowhere near the body's size."""


def raw_request(server: ApiServer, head: str, chunks: Iterator[bytes]) -> bytes:
    """Send ``head`` then ``chunks`` over one socket until the server answers, stops reading
    or closes; the answer it sent."""
    with socket.create_connection(("127.0.0.1", server.settings.api_port), timeout=5) as sock:
        sock.sendall(head.encode())
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # answered (or closed) before the body was complete
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
        sock.settimeout(30)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while True:
                end = answer.find(b"\r\n\r\n")
                if end >= 0:
                    lines = answer[:end].lower().split(b"\r\n")
                    length = next(int(line.split(b":")[1]) for line in lines
                                  if line.startswith(b"content-length:"))
                    if len(answer) >= end + 4 + length:
                        break
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        return answer


def json_array_chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    """A valid JSON array of strings, ``total`` bytes, in chunks (what a parser would keep)."""
    yield b"["
    sent = 1
    item = b'"' + b"x" * (size - 4) + b'",'
    while sent + len(item) < total:
        yield item
        sent += len(item)
    yield b'"end"]'


def chunked(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


def status_and_error(answer: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]


def test_declared_huge_body_is_413_at_once(api_server: ApiServer, http: httpx.Client) -> None:
    before = api_server.proc_status("VmRSS")
    head = (f"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1:{api_server.settings.api_port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n")
    answer = raw_request(api_server, head, json_array_chunks(HUGE))
    status, error = status_and_error(answer)
    assert status == 413, answer[:500]
    assert error["field"] == "body" and str(1 << 20) in error["reason"], error
    assert api_server.proc_status("VmRSS") - before < FEW_MIB
    assert http.get("/health").status_code == 200


def test_chunked_huge_body_is_413_while_it_arrives(api_server: ApiServer,
                                                   http: httpx.Client) -> None:
    before = api_server.proc_status("VmRSS")
    head = (f"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1:{api_server.settings.api_port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    answer = raw_request(api_server, head, chunked(json_array_chunks(HUGE)))
    status, error = status_and_error(answer)
    assert status == 413, answer[:500]
    assert error["kind"] == "PayloadTooLarge" and error["field"] == "body", error
    assert api_server.proc_status("VmRSS") - before < FEW_MIB
    assert http.get("/health").status_code == 200


def test_the_limit_is_a_setting(fresh_stack: None, start_api: object) -> None:
    """``max_json_body_bytes`` moves the limit: 4 KiB refuses a 5 KiB login, accepts 3 KiB."""
    server = start_api(max_json_body_bytes=4096)  # type: ignore[operator]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        big = client.post("/auth/login", json={"message": "x" * 5000, "signature": "0x"})
        assert big.status_code == 413, big.text
        small = client.post("/auth/login", json={"message": "x" * 3000, "signature": "0x"})
        assert small.status_code in (401, 422) and small.status_code != 413, small.text


def test_streamed_uploads_keep_their_own_limit(api_server: ApiServer, people: People) -> None:
    """A record envelope over 1 MiB (the JSON limit) still uploads: streamed routes count
    against max_upload_bytes."""
    patient = people.patient
    sealed = patient.add(os.urandom(3 * 1024 * 1024), label="Condition",
                         content_type="application/octet-stream")
    assert len(sealed.envelope) > 3 * 1024 * 1024
    listed = patient.get("/patient/records")
    assert listed.status_code == 200
    assert any(r["size"] == len(sealed.envelope) for r in listed.json()), listed.text
