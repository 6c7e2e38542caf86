"""Envelope round trips: every size edge, every API (bytes, stream, file, chunked iterator)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.crypto import pre
from kizuna.crypto.commitment import CommitmentHasher, commitment_of
from kizuna.errors import EnvelopeFormatError, InputError, IntegrityError
from kizuna.storage import envelope
from kizuna.storage.envelope import (
    DataKey,
    EnvelopeReader,
    decrypt_bytes,
    decrypt_stream,
    decrypt_to,
    encrypt_bytes,
    encrypt_stream,
    encrypt_to,
    read_header,
)
from kizuna.types import Commitment, RecordId

SEG = 64
SIZES = [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG, 3 * SEG + 1, 10 * SEG - 1]


def _seal(data: bytes, key: pre.UmbralSecretKey, record_id: RecordId, seg: int = SEG) -> bytes:
    return bytes(
        encrypt_bytes(
            data,
            owner_key=key.public_key,
            record_id=record_id,
            content_type="application/fhir+json",
            segment_size=seg,
        )
    )


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_bytes_and_stream(
    size: int, patient_sk: pre.UmbralSecretKey, record_id: RecordId
) -> None:
    data = os.urandom(size)
    sealed = _seal(data, patient_sk, record_id)
    streamed = b"".join(
        encrypt_stream(
            io.BytesIO(data),
            owner_key=patient_sk.public_key,
            record_id=record_id,
            content_type="application/fhir+json",
            segment_size=SEG,
        )
    )
    assert len(sealed) == len(streamed)  # same layout from both writers
    segments = max(1, -(-size // SEG))
    assert len(sealed) == read_header(sealed).size + size + 16 * segments
    for blob in (sealed, streamed):
        assert decrypt_bytes(blob, owner_sk=patient_sk) == data
        assert b"".join(decrypt_stream(io.BytesIO(blob), owner_sk=patient_sk)) == data
    assert size < 16 or data not in sealed  # no plaintext run leaks into the envelope


def test_exact_multiple_ends_with_a_full_final_segment(
    patient_sk: pre.UmbralSecretKey, record_id: RecordId
) -> None:
    data = os.urandom(4 * SEG)
    chunks = list(decrypt_stream(_seal(data, patient_sk, record_id), owner_sk=patient_sk))
    assert [len(c) for c in chunks] == [SEG] * 4  # no empty trailing segment


def test_header_fields(patient_sk: pre.UmbralSecretKey, record_id: RecordId) -> None:
    sealed = _seal(b"hello", patient_sk, record_id)
    header = read_header(sealed)
    assert sealed.startswith(b"KZEN\x01\x00")
    assert header.version == envelope.VERSION
    assert header.record_id == record_id
    assert header.content_type == "application/fhir+json"
    assert header.segment_size == SEG
    assert header.raw == sealed[: header.size]
    assert header.unwrap_for_owner(patient_sk) == header.unwrap_for_owner(patient_sk)


def test_every_record_gets_a_fresh_data_key(
    patient_sk: pre.UmbralSecretKey, record_id: RecordId
) -> None:
    a, b = (read_header(_seal(b"same", patient_sk, record_id)) for _ in range(2))
    assert a.unwrap_for_owner(patient_sk) != b.unwrap_for_owner(patient_sk)
    assert a.capsule != b.capsule
    assert a.nonce_prefix != b.nonce_prefix


@pytest.mark.parametrize("chunk", [1, 7, SEG, SEG + 16, 1000])
def test_iterator_sources_of_any_chunking(
    chunk: int, patient_sk: pre.UmbralSecretKey, record_id: RecordId
) -> None:
    data = os.urandom(5 * SEG + 3)
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    sealed = b"".join(
        encrypt_stream(
            iter(pieces),
            owner_key=patient_sk.public_key,
            record_id=record_id,
            content_type="application/octet-stream",
            segment_size=SEG,
        )
    )
    blob_pieces = [sealed[i : i + chunk] for i in range(0, len(sealed), chunk)]
    assert b"".join(decrypt_stream(iter(blob_pieces), owner_sk=patient_sk)) == data
    # empty chunks and mutable buffers in the stream change nothing
    mixed = [bytearray(p) if i % 2 else memoryview(p) for i, p in enumerate(blob_pieces)]
    padded = [x for piece in mixed for x in (b"", piece)]
    assert b"".join(decrypt_stream(iter(padded), owner_sk=patient_sk)) == data


class _TrickleFile(io.RawIOBase):
    """A file whose ``read`` returns at most 5 bytes at a time, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 5) if size >= 0 else 5)


def test_short_reads_from_files_are_handled(
    patient_sk: pre.UmbralSecretKey, record_id: RecordId
) -> None:
    data = os.urandom(3 * SEG + 9)
    sealed = b"".join(
        encrypt_stream(
            _TrickleFile(data),
            owner_key=patient_sk.public_key,
            record_id=record_id,
            content_type="application/pdf",
            segment_size=SEG,
        )
    )
    assert b"".join(decrypt_stream(_TrickleFile(sealed), owner_sk=patient_sk)) == data


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(max_size=600),
    seg=st.integers(min_value=16, max_value=200),
    chunk=st.integers(min_value=1, max_value=300),
)
def test_round_trip_property(data: bytes, seg: int, chunk: int) -> None:
    key = pre.UmbralSecretKey.random()
    record_id = RecordId(os.urandom(32))
    pieces = (data[i : i + chunk] for i in range(0, len(data), chunk))
    sealed = b"".join(
        encrypt_stream(
            pieces,
            owner_key=key.public_key,
            record_id=record_id,
            content_type="text/plain",
            segment_size=seg,
        )
    )
    assert decrypt_bytes(sealed, owner_sk=key) == data
    reader = EnvelopeReader(iter([sealed[i : i + chunk] for i in range(0, len(sealed), chunk)]))
    assert b"".join(reader.decrypt(reader.header.unwrap_for_owner(key))) == data


def test_commitment_while_streaming(patient_sk: pre.UmbralSecretKey, record_id: RecordId) -> None:
    data = os.urandom(5 * SEG)
    hasher = CommitmentHasher()
    chunks = list(
        hasher.tap(
            encrypt_stream(
                data,
                owner_key=patient_sk.public_key,
                record_id=record_id,
                content_type="application/octet-stream",
                segment_size=SEG,
            )
        )
    )
    sealed = b"".join(chunks)
    assert hasher.commitment == commitment_of(sealed) == hashlib.sha256(sealed).digest()
    assert hasher.size == len(sealed)

    ok = decrypt_stream(sealed, owner_sk=patient_sk, expected_commitment=hasher.commitment)
    assert b"".join(ok) == data
    wrong = Commitment(bytes(32))
    released: list[bytes] = []
    with pytest.raises(IntegrityError, match="expected commitment"):
        released.extend(decrypt_stream(sealed, owner_sk=patient_sk, expected_commitment=wrong))
    assert len(released) == 4  # the final segment is held back until the commitment matched


def test_commitment_not_ready_before_the_end() -> None:
    hasher = CommitmentHasher()
    iterator = hasher.tap(iter([b"a", b"b"]))
    next(iterator)
    with pytest.raises(RuntimeError, match="not ready"):
        _ = hasher.commitment


def test_decrypt_with_the_data_key(patient_sk: pre.UmbralSecretKey, record_id: RecordId) -> None:
    sealed = _seal(b"x" * 200, patient_sk, record_id)
    key = read_header(sealed).unwrap_for_owner(patient_sk)
    assert decrypt_bytes(sealed, key=key) == b"x" * 200
    with pytest.raises(TypeError, match="exactly one"):
        decrypt_bytes(sealed, key=key, owner_sk=patient_sk)
    reader = EnvelopeReader(sealed)
    list(reader.decrypt(key))
    with pytest.raises(RuntimeError, match="once"):
        reader.decrypt(key)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"content_type": "fhir"}, "content_type"),
        ({"content_type": "text/plain\nX: y"}, "content_type"),
        ({"content_type": "a/" + "b" * 300}, "content_type"),
        ({"segment_size": 8}, "segment_size"),
        ({"segment_size": (1 << 24) + 1}, "segment_size"),
        ({"record_id": b"short"}, "record_id"),
    ],
)
def test_bad_arguments_are_named(
    kwargs: dict[str, object], field: str, patient_sk: pre.UmbralSecretKey, record_id: RecordId
) -> None:
    args: dict[str, object] = {
        "owner_key": patient_sk.public_key,
        "record_id": record_id,
        "content_type": "application/pdf",
        "segment_size": SEG,
    }
    args.update(kwargs)
    with pytest.raises(InputError) as caught:
        encrypt_stream(b"data", **args)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_not_an_envelope() -> None:
    with pytest.raises(EnvelopeFormatError, match="not a Kizuna envelope"):
        read_header(b'{"resourceType": "Patient"}' + bytes(100))
    with pytest.raises(EnvelopeFormatError, match="truncated header"):
        read_header(b"KZEN\x01")
    with pytest.raises(EnvelopeFormatError, match="truncated header"):
        read_header(b"")


def test_data_key_is_a_secret() -> None:
    key = DataKey.random()
    assert repr(key) == str(key) == "DataKey(...)"
    assert key.reveal().hex() not in repr(key)


def test_file_to_file(tmp_path: Path, patient_sk: pre.UmbralSecretKey, record_id: RecordId) -> None:
    source = tmp_path / "scan.dcm"
    source.write_bytes(os.urandom(7 * SEG + 5))
    sealed_path = tmp_path / "scan.kzen"
    with source.open("rb") as src, sealed_path.open("wb") as dst:
        sealed = encrypt_to(
            src,
            dst,
            owner_key=patient_sk.public_key,
            record_id=record_id,
            content_type="application/dicom",
            segment_size=SEG,
        )
    blob = sealed_path.read_bytes()
    assert sealed.size == len(blob)
    assert sealed.commitment == commitment_of(blob)
    assert sealed.header == read_header(blob)
    out = tmp_path / "scan.out"
    with sealed_path.open("rb") as src, out.open("wb") as dst:
        written = decrypt_to(src, dst, owner_sk=patient_sk, expected_commitment=sealed.commitment)
    assert written == source.stat().st_size
    assert out.read_bytes() == source.read_bytes()
    with pytest.raises(TypeError, match="exactly one"):
        decrypt_to(blob, io.BytesIO())
    sink = io.BytesIO()
    with pytest.raises(IntegrityError, match="truncated"):
        decrypt_to(blob[: -(5 + 16)], sink, owner_sk=patient_sk)  # final segment dropped
    assert len(sink.getvalue()) == 6 * SEG  # an unfinished prefix, as documented
