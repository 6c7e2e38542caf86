"""Every way to damage an envelope is caught, named, and releases no unauthenticated byte.

The envelope under attack has 5 segments of 64 bytes (the last one shorter). For each attack
the streaming reader is drained into a list until it raises: what it released must be exactly
the authentic segments *before* the damage, never the damaged one, never anything after.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.crypto import pre
from kizuna.errors import EnvelopeError, EnvelopeFormatError, IntegrityError
from kizuna.storage.envelope import (
    DataKey,
    EnvelopeReader,
    decrypt_bytes,
    decrypt_stream,
    encrypt_bytes,
    read_header,
)
from kizuna.types import RecordId

SEG = 64
STRIDE = SEG + 16
PLAINTEXT = os.urandom(4 * SEG + 20)
SEGMENTS = [PLAINTEXT[i : i + SEG] for i in range(0, len(PLAINTEXT), SEG)]


def _seal(
    key: pre.UmbralSecretKey, data: bytes = PLAINTEXT, record_id: bytes | None = None
) -> bytes:
    return bytes(
        encrypt_bytes(
            data,
            owner_key=key.public_key,
            record_id=RecordId(record_id or os.urandom(32)),
            content_type="application/fhir+json",
            segment_size=SEG,
        )
    )


@pytest.fixture(scope="module")
def owner() -> pre.UmbralSecretKey:
    return pre.UmbralSecretKey.random()


@pytest.fixture(scope="module")
def sealed(owner: pre.UmbralSecretKey) -> bytes:
    return _seal(owner)


def _split(blob: bytes) -> tuple[bytes, list[bytes]]:
    size = read_header(blob).size
    body = blob[size:]
    return blob[:size], [body[i : i + STRIDE] for i in range(0, len(body), STRIDE)]


def _drain(
    blob: bytes, owner: pre.UmbralSecretKey, chunked: bool = False
) -> tuple[list[bytes], EnvelopeError]:
    """Stream-decrypt ``blob``; return what was released and the error it ended with."""
    source: bytes | Iterator[bytes] = blob
    if chunked:
        source = iter([blob[i : i + 13] for i in range(0, len(blob), 13)])
    released: list[bytes] = []
    with pytest.raises(EnvelopeError) as caught:
        released.extend(decrypt_stream(source, owner_sk=owner))
    # the in-memory path must fail the same way and return nothing
    with pytest.raises(type(caught.value)):
        decrypt_bytes(blob, owner_sk=owner)
    return released, caught.value


def _assert_prefix(released: list[bytes], count: int) -> None:
    assert released == SEGMENTS[:count], "only authentic segments before the damage are released"


def test_intact_envelope_opens(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    assert list(decrypt_stream(sealed, owner_sk=owner)) == SEGMENTS
    assert len(_split(sealed)[1]) == 5


def test_every_bit_flip_in_the_preamble_is_caught(
    sealed: bytes, owner: pre.UmbralSecretKey
) -> None:
    size = read_header(sealed).size
    kinds: set[str] = set()
    for offset in range(size):
        for bit in (0, 7):
            damaged = bytearray(sealed)
            damaged[offset] ^= 1 << bit
            released, error = _drain(bytes(damaged), owner)
            assert released == [], f"byte {offset} bit {bit}: plaintext released"
            kinds.add(type(error).__name__)
    assert kinds == {"EnvelopeFormatError", "IntegrityError"}


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (0, "not a Kizuna envelope"),  # magic
        (4, "unsupported envelope version"),  # version
        (5, "flags"),  # reserved flags
        (10, "wrong key"),  # record id: bound into the key schedule
        (42, "wrong key"),  # nonce prefix
        (49, "wrong key"),  # key commitment itself
        (85, "segment 0 failed authentication"),  # content type: "aqplication/..." still parses
    ],
)
def test_header_fields_fail_with_a_clear_message(
    sealed: bytes, owner: pre.UmbralSecretKey, offset: int, message: str
) -> None:
    damaged = bytearray(sealed)
    damaged[offset] ^= 0x01
    released, error = _drain(bytes(damaged), owner)
    assert released == []
    assert message in str(error)


def test_wrong_version_and_magic(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    v2 = sealed[:4] + b"\x02" + sealed[5:]
    with pytest.raises(EnvelopeFormatError, match="version 2"):
        read_header(v2)
    with pytest.raises(EnvelopeFormatError, match="magic"):
        read_header(b"KZEX" + sealed[4:])


def test_bit_flip_in_capsule_or_wrapped_key(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    header = read_header(sealed)
    capsule_at = header.raw.index(header.capsule.to_bytes())
    wrapped_at = header.raw.index(header.wrapped_key)
    for offset in (capsule_at + 5, capsule_at + 40, wrapped_at + 1, wrapped_at + 30):
        damaged = bytearray(sealed)
        damaged[offset] ^= 0x10
        released, error = _drain(bytes(damaged), owner)
        assert released == []
        assert isinstance(error, EnvelopeFormatError | IntegrityError)


@pytest.mark.parametrize("segment", range(5))
@pytest.mark.parametrize("where", ["body", "tag"])
def test_bit_flip_in_a_segment(
    sealed: bytes, owner: pre.UmbralSecretKey, segment: int, where: str
) -> None:
    preamble, segments = _split(sealed)
    damaged = bytearray(segments[segment])
    damaged[-1 if where == "tag" else 0] ^= 0x80
    segments[segment] = bytes(damaged)
    for chunked in (False, True):
        released, error = _drain(preamble + b"".join(segments), owner, chunked=chunked)
        assert isinstance(error, IntegrityError)
        assert f"segment {segment} failed authentication" in str(error)
        _assert_prefix(released, segment)


@pytest.mark.parametrize("keep", [1, 2, 3, 4])
def test_truncation_at_a_segment_boundary(
    sealed: bytes, owner: pre.UmbralSecretKey, keep: int
) -> None:
    preamble, segments = _split(sealed)
    released, error = _drain(preamble + b"".join(segments[:keep]), owner)
    assert isinstance(error, IntegrityError)
    assert "truncated" in str(error)
    assert f"segment {keep - 1}, which is not its final segment" in str(error)
    _assert_prefix(released, keep - 1)  # the would-be final segment is withheld


def test_dropped_last_segment(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    preamble, segments = _split(sealed)
    released, error = _drain(preamble + b"".join(segments[:-1]), owner)
    assert "truncated" in str(error)
    _assert_prefix(released, 3)


@pytest.mark.parametrize("cut", [1, 15, 16, 40, STRIDE - 1])
def test_truncation_inside_a_segment(sealed: bytes, owner: pre.UmbralSecretKey, cut: int) -> None:
    preamble, segments = _split(sealed)
    released, error = _drain(preamble + b"".join(segments[:2]) + segments[2][:cut], owner)
    assert isinstance(error, IntegrityError)
    _assert_prefix(released, 2)
    if cut < 16:
        assert "shorter than its 16-byte tag" in str(error)


def test_header_only(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    preamble, _ = _split(sealed)
    released, error = _drain(preamble, owner)
    assert released == []
    assert "no segments" in str(error)


def test_truncated_header(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    for cut in (3, 50, read_header(sealed).size - 1):
        with pytest.raises(EnvelopeFormatError, match="truncated header"):
            list(decrypt_stream(sealed[:cut], owner_sk=owner))


def test_trailing_data(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    _, segments = _split(sealed)
    for extra in (b"\x00" * 16, segments[0], b"garbage"):
        released, error = _drain(sealed + extra, owner)
        assert isinstance(error, IntegrityError)
        assert released == SEGMENTS[:4]  # the real final segment is never released
    # a short final segment absorbs what follows it into one over-long segment
    released, error = _drain(sealed + segments[-1], owner)
    assert "segment 4 failed authentication" in str(error)


def test_trailing_data_after_a_full_final_segment(owner: pre.UmbralSecretKey) -> None:
    data = PLAINTEXT[: 4 * SEG]
    blob = _seal(owner, data)
    _, segments = _split(blob)
    released: list[bytes] = []
    with pytest.raises(IntegrityError, match="data after the final segment 3"):
        released.extend(decrypt_stream(blob + segments[1], owner_sk=owner))
    assert released == SEGMENTS[:3]


def test_reordered_segments(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    preamble, segments = _split(sealed)
    segments[1], segments[2] = segments[2], segments[1]
    released, error = _drain(preamble + b"".join(segments), owner)
    assert "segment 1 failed authentication" in str(error)
    _assert_prefix(released, 1)


def test_duplicated_and_dropped_middle_segment(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    preamble, segments = _split(sealed)
    released, error = _drain(
        preamble + b"".join([*segments[:2], segments[1], *segments[2:]]), owner
    )
    assert "segment 2 failed authentication" in str(error)
    released, error = _drain(preamble + b"".join([segments[0], *segments[2:]]), owner)
    assert "segment 1 failed authentication" in str(error)
    _assert_prefix(released, 1)


def test_segments_swapped_in_from_another_record(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    """Same owner, same sizes, same plaintext even: the other record's segments never verify."""
    preamble, segments = _split(sealed)
    other_preamble, other_segments = _split(_seal(owner))
    assert len(other_preamble) == len(preamble)
    mixed = preamble + b"".join([*segments[:3], other_segments[3], segments[4]])
    released, error = _drain(mixed, owner)
    assert "segment 3 failed authentication" in str(error)
    _assert_prefix(released, 3)
    # and the other record's header on these segments (its own key unwraps fine)
    released, error = _drain(other_preamble + b"".join(segments), owner)
    assert released == []
    assert "segment 0 failed authentication" in str(error)


def test_same_record_id_reencrypted_does_not_mix(owner: pre.UmbralSecretKey) -> None:
    record = os.urandom(32)
    a_pre, a_segs = _split(_seal(owner, record_id=record))
    _, b_segs = _split(_seal(owner, record_id=record))
    released, error = _drain(a_pre + b"".join([a_segs[0], b_segs[1], *a_segs[2:]]), owner)
    assert "segment 1 failed authentication" in str(error)
    _assert_prefix(released, 1)


def test_wrong_secret_key(sealed: bytes) -> None:
    stranger = pre.UmbralSecretKey.random()
    with pytest.raises(IntegrityError, match="wrong secret key"):
        list(decrypt_stream(sealed, owner_sk=stranger))
    with pytest.raises(IntegrityError, match="wrong secret key"):
        decrypt_bytes(sealed, owner_sk=stranger)


def test_wrong_data_key(sealed: bytes, owner: pre.UmbralSecretKey) -> None:
    other_key = read_header(_seal(owner)).unwrap_for_owner(owner)
    for key in (DataKey.random(), other_key):
        with pytest.raises(IntegrityError, match="wrong key"):
            EnvelopeReader(sealed).decrypt(key)
        with pytest.raises(IntegrityError, match="wrong key"):
            decrypt_bytes(sealed, key=key)


def test_in_memory_decrypt_returns_nothing_on_failure(
    sealed: bytes, owner: pre.UmbralSecretKey
) -> None:
    preamble, segments = _split(sealed)
    damaged = bytearray(segments[4])
    damaged[3] ^= 1
    with pytest.raises(IntegrityError, match="segment 4"):
        decrypt_bytes(preamble + b"".join(segments[:4]) + bytes(damaged), owner_sk=owner)


def test_segment_size_field_changed_to_another_valid_size(
    sealed: bytes, owner: pre.UmbralSecretKey
) -> None:
    damaged = sealed[:6] + struct.pack(">I", 2 * SEG) + sealed[10:]
    released, error = _drain(damaged, owner)
    assert released == []
    assert isinstance(error, IntegrityError)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_byte_changed_anywhere_is_caught(data: st.DataObject) -> None:
    owner, blob = _PROPERTY_OWNER, _PROPERTY_BLOB
    offset = data.draw(st.integers(min_value=0, max_value=len(blob) - 1), label="offset")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="xor")
    damaged = bytearray(blob)
    damaged[offset] ^= mask
    released: list[bytes] = []
    with pytest.raises(EnvelopeError):
        released.extend(decrypt_stream(bytes(damaged), owner_sk=owner))
    assert released == SEGMENTS[: len(released)]
    header_size = read_header(blob).size
    if offset >= header_size:
        assert len(released) <= (offset - header_size) // STRIDE


_PROPERTY_OWNER = pre.UmbralSecretKey.random()
_PROPERTY_BLOB = _seal(_PROPERTY_OWNER)
