"""Envelope v1 parity between Python (kizuna.storage.envelope) and the web core
(web/src/core/envelope.ts, WebCrypto), both ways, byte for byte.

``web/test/envelope_cli.ts`` (run by the venv's Node 24 with type stripping) answers a JSON list
of requests: it seals plaintexts to an Umbral public key made here, and opens envelopes with an
Umbral secret key made here -- in memory and streamed from a ReadableStream of small pieces,
which must agree. Sizes: empty, 1 byte, exactly one segment, several segments plus a remainder,
an exact multiple of the segment size. A tampered segment, a cut at a segment boundary, appended
bytes and a wrong owner key are refused on both sides, with the same error and message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.errors import IntegrityError
from kizuna.storage.envelope import (
    EnvelopeReader,
    decrypt_bytes,
    encrypt_bytes,
    read_header,
)
from kizuna.types import RecordId

pytestmark = pytest.mark.node

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "web" / "test" / "envelope_cli.ts"
SEGMENT = 64
SIZES = [0, 1, SEGMENT, 3 * SEGMENT + 17, 4 * SEGMENT]
CONTENT_TYPE = "application/fhir+json"


def _node() -> str:
    node = shutil.which("node", path=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert node, "no node on PATH: `. scripts/bootstrap.sh` puts Node 24 there"
    assert (ROOT / "web" / "node_modules" / "@nucypher" / "umbral-pre").is_dir(), (
        "web/node_modules is missing: `. scripts/bootstrap.sh` (or npm install in web/)"
    )
    return node


def node(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = subprocess.run(
        [_node(), str(CLI)],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    answers: list[dict[str, Any]] = json.loads(out.stdout)
    assert len(answers) == len(requests)
    return answers


def _plaintext(size: int) -> bytes:
    return bytes((i * 31 + 7) % 256 for i in range(size))


def _open(envelope: bytes, sk: pre.UmbralSecretKey, chunk: int = 7) -> dict[str, Any]:
    return {
        "op": "open",
        "owner_secret_key": sk.to_secret_bytes().hex(),
        "envelope": envelope.hex(),
        "chunk": chunk,
    }


def _python_error(envelope: bytes, sk: pre.UmbralSecretKey) -> str:
    with pytest.raises(IntegrityError) as caught:
        decrypt_bytes(envelope, owner_sk=sk)
    with pytest.raises(IntegrityError) as streamed:
        reader = EnvelopeReader(iter([envelope[i : i + 7] for i in range(0, len(envelope), 7)]))
        list(reader.decrypt(reader.header.unwrap_for_owner(sk)))
    assert str(streamed.value) == str(caught.value)
    return str(caught.value)


def test_envelopes_sealed_in_python_open_in_the_web_core() -> None:
    sk = pre.UmbralSecretKey.random()
    record_ids = [RecordId(os.urandom(32)) for _ in SIZES]
    envelopes = [
        bytes(
            encrypt_bytes(
                _plaintext(size),
                owner_key=sk.public_key,
                record_id=rid,
                content_type=CONTENT_TYPE,
                segment_size=SEGMENT,
            )
        )
        for size, rid in zip(SIZES, record_ids, strict=True)
    ]
    requests = [
        _open(e, sk, chunk) for e, chunk in zip(envelopes, [1, 7, 100, 64, 1000], strict=True)
    ]
    for request, envelope in zip(requests, envelopes, strict=True):
        request["commitment"] = commitment_of(envelope).hex()  # the streamed read checks it
    answers = node(requests)
    for size, rid, answer in zip(SIZES, record_ids, answers, strict=True):
        assert answer.get("error") is None, (size, answer)
        assert answer["plaintext"] == _plaintext(size).hex(), size
        assert answer["content_type"] == CONTENT_TYPE
        assert answer["record_id"] == rid.hex()


def test_a_wrong_commitment_is_refused_in_the_web_core_as_in_python() -> None:
    sk = pre.UmbralSecretKey.random()
    made = [
        bytes(
            encrypt_bytes(
                _plaintext(3 * SEGMENT + 5),
                owner_key=sk.public_key,
                record_id=RecordId(os.urandom(32)),
                content_type=CONTENT_TYPE,
                segment_size=SEGMENT,
            )
        )
        for _ in range(2)
    ]
    request = _open(made[0], sk) | {"commitment": commitment_of(made[1]).hex()}
    [answer] = node([request])
    reader = EnvelopeReader(made[0])
    with pytest.raises(IntegrityError) as caught:
        list(
            reader.decrypt(
                reader.header.unwrap_for_owner(sk), expected_commitment=commitment_of(made[1])
            )
        )
    assert answer.get("error") == "IntegrityError", answer
    assert answer["message"] == str(caught.value)
    assert bytes.fromhex(answer["released"]) == _plaintext(3 * SEGMENT), "final one withheld"


def test_envelopes_sealed_in_the_web_core_open_in_python() -> None:
    sk = pre.UmbralSecretKey.random()
    requests: list[dict[str, Any]] = []
    for streamed in (False, True):
        for size in SIZES:
            requests.append(
                {
                    "op": "seal",
                    "owner_public_key": sk.public_key.hex(),
                    "record_id": os.urandom(32).hex(),
                    "content_type": CONTENT_TYPE,
                    "segment_size": SEGMENT,
                    "plaintext": _plaintext(size).hex(),
                    "streamed": streamed,
                }
            )
    answers = node(requests)
    for request, answer in zip(requests, answers, strict=True):
        envelope = bytes.fromhex(answer["envelope"])
        header = read_header(envelope)
        assert header.record_id.hex() == request["record_id"]
        assert header.content_type == CONTENT_TYPE
        assert header.segment_size == SEGMENT
        assert header.size == 284, "the preamble of application/fhir+json (docs/envelope.md)"
        size = len(request["plaintext"]) // 2
        segments = max(1, -(-size // SEGMENT))
        assert len(envelope) == header.size + size + 16 * segments
        expected = _plaintext(size)
        assert bytes(decrypt_bytes(envelope, owner_sk=sk)) == expected
        reader = EnvelopeReader(iter([envelope[i : i + 5] for i in range(0, len(envelope), 5)]))
        assert b"".join(reader.decrypt(reader.header.unwrap_for_owner(sk))) == expected


def _damaged(envelope: bytes, preamble: int) -> dict[str, bytes]:
    stride = SEGMENT + 16
    middle = bytearray(envelope)
    middle[preamble + stride + 3] ^= 0x01  # a bit in segment 1 of 4
    return {
        "flipped bit in segment 1": bytes(middle),
        "cut after segment 1": envelope[: preamble + 2 * stride],
        "appended bytes": envelope + b"\x00" * 20,
        "cut inside the last tag": envelope[: len(envelope) - 9 - 8],
    }


def test_tampered_envelopes_are_refused_on_both_sides_alike() -> None:
    sk = pre.UmbralSecretKey.random()
    size = 4 * SEGMENT  # a full final segment: bytes after it are "unexpected data"
    python_made = bytes(
        encrypt_bytes(
            _plaintext(size),
            owner_key=sk.public_key,
            record_id=RecordId(os.urandom(32)),
            content_type=CONTENT_TYPE,
            segment_size=SEGMENT,
        )
    )
    [sealed] = node(
        [
            {
                "op": "seal",
                "owner_public_key": sk.public_key.hex(),
                "record_id": os.urandom(32).hex(),
                "content_type": CONTENT_TYPE,
                "segment_size": SEGMENT,
                "plaintext": _plaintext(size).hex(),
                "streamed": True,
            }
        ]
    )
    node_made = bytes.fromhex(sealed["envelope"])
    cases: list[tuple[str, bytes, pre.UmbralSecretKey]] = []
    for origin, envelope in (("python", python_made), ("node", node_made)):
        preamble = read_header(envelope).size
        for what, damaged in _damaged(envelope, preamble).items():
            cases.append((f"{origin}: {what}", damaged, sk))
        cases.append((f"{origin}: another owner's key", envelope, pre.UmbralSecretKey.random()))
    answers = node([_open(envelope, key) for _, envelope, key in cases])
    for (what, envelope, key), answer in zip(cases, answers, strict=True):
        assert answer.get("error") == "IntegrityError", (what, answer)
        assert answer["message"] == _python_error(envelope, key), what
        # only the authentic segments before the damage were released by the stream
        released = bytes.fromhex(answer["released"])
        assert _plaintext(size).startswith(released), what
        if "segment 1" in what:
            assert len(released) == SEGMENT, what
    assert any("failed authentication" in a["message"] for a in answers)
    assert any(
        a["message"].startswith("truncated: the envelope ends after segment 1") for a in answers
    )
    assert any("unexpected data after the final segment" in a["message"] for a in answers)
