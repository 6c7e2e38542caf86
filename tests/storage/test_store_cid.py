"""CID parsing and encoding: canonical base32 CIDv1, other spellings accepted, bad ones refused
with the reason."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kizuna.errors import InputError, InvalidCid, StorageError
from kizuna.storage.cid import (
    DAG_PB,
    RAW,
    ContentId,
    decode_varint,
    encode_varint,
    parse_cid,
)

# What js-ipfs 0.66.1 printed for `add --cid-version=1 --raw-leaves` of b"" and b"a".
EMPTY_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
A_CID = "bafkreigks6arfsq3xxfpvqrrwonchxcnu6do76auprhhfomao6c273sixm"

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58encode(raw: bytes) -> str:
    """An independent base58btc encoder (the test's own, not the module's decoder reversed)."""
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _B58[digit] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def test_raw_leaf_cids_match_what_ipfs_printed() -> None:
    assert ContentId.for_block(RAW, b"").text() == EMPTY_CID
    assert ContentId.for_block(RAW, b"a").text() == A_CID


def test_parse_then_text_is_identity_for_canonical_cids() -> None:
    for text in (EMPTY_CID, A_CID):
        cid = parse_cid(text)
        assert cid.codec == RAW and cid.version == 1
        assert cid.text() == text
        assert cid.digest == hashlib.sha256(b"" if text == EMPTY_CID else b"a").digest()


def test_binary_layout_is_version_codec_multihash() -> None:
    cid = ContentId.for_block(DAG_PB, b"x")
    assert cid.to_bytes() == b"\x01\x70\x12\x20" + hashlib.sha256(b"x").digest()
    assert ContentId.from_bytes(cid.to_bytes()) == cid


def test_other_spellings_of_the_same_cid_are_accepted() -> None:
    cid = parse_cid(A_CID)
    upper = "B" + A_CID[1:].upper()
    base58 = "z" + _b58encode(cid.to_bytes())
    assert parse_cid(upper) == cid
    assert parse_cid(base58) == cid


def test_cidv0_names_the_dag_pb_cidv1_with_the_same_digest() -> None:
    digest = hashlib.sha256(b"some dag-pb node").digest()
    v0 = _b58encode(b"\x12\x20" + digest)
    assert v0.startswith("Qm") and len(v0) == 46
    parsed = parse_cid(v0)
    assert parsed.version == 0 and parsed.codec == DAG_PB and parsed.digest == digest
    assert parsed.to_v1() == ContentId(codec=DAG_PB, digest=digest)
    assert parsed.to_v1().text().startswith("bafybei")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("x" + A_CID[1:], "unsupported multibase prefix"),
        ("b" + A_CID[1:].upper(), "lower-case"),
        ("b", "no data"),
        ("b0189", "not base32"),
        (A_CID[:-6], "truncated"),
        (
            "b" + base64.b32encode(b"\x02\x55\x12\x20" + bytes(32)).decode().lower().rstrip("="),
            "unsupported CID version 2",
        ),
        (
            "b" + base64.b32encode(b"\x01\x71\x12\x20" + bytes(32)).decode().lower().rstrip("="),
            "unsupported codec 0x71",
        ),
        (
            "b" + base64.b32encode(b"\x01\x55\x13\x40" + bytes(64)).decode().lower().rstrip("="),
            "unsupported multihash 0x13",
        ),
        (
            "b" + base64.b32encode(b"\x01\x55\x12\x10" + bytes(16)).decode().lower().rstrip("="),
            "digest length 16",
        ),
        (
            "b" + base64.b32encode(b"\x01\x55\x12\x20" + bytes(33)).decode().lower().rstrip("="),
            "trailing bytes",
        ),
        ("z0OIl", "not a base58btc character"),
        ("Qm" + "1" * 44, "not a CIDv0"),
        ("b" + "a" * 300, "longer than 256"),
        ("hello world", "unsupported multibase prefix"),
    ],
)
def test_bad_cids_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidCid) as caught:
        parse_cid(text)
    error = caught.value
    assert reason in str(error)
    assert error.field == "cid"
    assert isinstance(error, StorageError) and isinstance(error, InputError)


def test_a_non_string_is_refused() -> None:
    with pytest.raises(InvalidCid, match="a CID is a string"):
        parse_cid(
            b"bafk..."  # type: ignore[arg-type]
        )


def test_content_id_refuses_a_wrong_digest_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ContentId(codec=RAW, digest=b"short")


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = encode_varint(value)
    assert decode_varint(encoded) == (value, len(encoded))
    assert all(b & 0x80 for b in encoded[:-1]) and not encoded[-1] & 0x80


def test_varint_truncated_is_an_error() -> None:
    with pytest.raises(ValueError, match="truncated"):
        decode_varint(b"\x80\x80")


@given(st.binary(max_size=64), st.sampled_from([RAW, DAG_PB]))
def test_any_block_cid_round_trips_through_text_and_bytes(block: bytes, codec: int) -> None:
    cid = ContentId.for_block(codec, block)
    assert parse_cid(cid.text()) == cid
    assert ContentId.from_bytes(cid.to_bytes()) == cid
