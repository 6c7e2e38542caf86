"""Content identifiers (CIDs): parse, encode, and build the CIDs Kizuna's stores use.

A CIDv1 is ``varint(1) varint(codec) multihash``; a multihash is ``varint(0x12) varint(32)
sha256-digest`` for sha2-256, the only hash Kizuna produces. As text it is the multibase prefix
``b`` followed by the bytes in RFC 4648 base32, lower case, without padding — what
``ipfs add --cid-version=1`` prints (js-ipfs only when asked for ``cid-base=base32``).

Parsing also accepts what other tools print for the same content — a CIDv0 (``Qm...``, base58btc,
implicitly dag-pb + sha2-256) and CIDv1 in base58btc (``z...``) or upper-case base32 (``B...``) —
and :meth:`ContentId.text` always gives the one canonical base32 CIDv1 spelling, so one piece
of content has one name in Kizuna. This is small enough to own (the ``multiformats`` package would
add a dependency and a registry of codecs Kizuna never uses).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass

from kizuna.errors import InvalidCid
from kizuna.types import Cid

RAW = 0x55
"""Multicodec of a raw block (a UnixFS leaf made with ``--raw-leaves``)."""
DAG_PB = 0x70
"""Multicodec of a dag-pb block (a UnixFS node with links)."""
SHA2_256 = 0x12
"""Multihash code of sha2-256."""
SHA2_256_LENGTH = 32

_CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb"}
_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
_MAX_CID_TEXT = 256


# --- varints (unsigned LEB128, as multiformats and protobuf use them) -------------------------


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128: seven bits per byte, low bits first, high bit set on all but the last."""
    if value < 0:
        raise ValueError("varint must not be negative")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes | memoryview, offset: int = 0) -> tuple[int, int]:
    """Read one unsigned varint at ``offset``; return ``(value, next offset)``.

    Raises ``ValueError`` when the data ends inside the varint or it is longer than 9 bytes
    (no value Kizuna reads needs more than 63 bits).
    """
    value = 0
    shift = 0
    pos = offset
    end = len(data)
    while True:
        if pos >= end:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 9 bytes")


# --- the CID ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContentId:
    """A parsed CID: version, codec and sha2-256 digest. Compare these, not strings."""

    codec: int
    digest: bytes
    version: int = 1

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise ValueError(f"CID version {self.version} is not 0 or 1")
        if self.version == 0 and self.codec != DAG_PB:
            raise ValueError("a CIDv0 is always dag-pb")
        if len(self.digest) != SHA2_256_LENGTH:
            raise ValueError("sha2-256 digest must be 32 bytes")

    @classmethod
    def for_block(cls, codec: int, block: bytes | memoryview) -> ContentId:
        """The CIDv1 of a block with this codec, hashed with sha2-256."""
        return cls(codec=codec, digest=hashlib.sha256(block).digest())

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES.get(self.codec, hex(self.codec))

    def to_v1(self) -> ContentId:
        """The same content named by a CIDv1 (a CIDv0 becomes dag-pb CIDv1)."""
        return self if self.version == 1 else ContentId(codec=self.codec, digest=self.digest)

    def to_bytes(self) -> bytes:
        """The binary CIDv1 (what dag-pb links and CAR files hold)."""
        return (
            encode_varint(1)
            + encode_varint(self.codec)
            + bytes((SHA2_256, SHA2_256_LENGTH))
            + self.digest
        )

    def text(self) -> Cid:
        """The canonical spelling: CIDv1, multibase ``b`` (base32, lower case, unpadded)."""
        return _text_of(self)

    def __str__(self) -> str:
        return self.text()

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> ContentId:
        """Parse a binary CID (v1, or a bare v0 multihash). ``ValueError`` when malformed."""
        cid, end = cls.read(data, 0)
        if end != len(data):
            raise ValueError(f"{len(data) - end} trailing bytes after the CID")
        return cid

    @classmethod
    def read(cls, data: bytes | memoryview, offset: int) -> tuple[ContentId, int]:
        """Parse a binary CID starting at ``offset``; return it and the offset after it."""
        if len(data) - offset >= 34 and data[offset] == SHA2_256 and data[offset + 1] == 32:
            # A CIDv0 is just the multihash.
            return cls(codec=DAG_PB, digest=bytes(data[offset + 2 : offset + 34]), version=0), (
                offset + 34
            )
        version, pos = decode_varint(data, offset)
        if version != 1:
            raise ValueError(f"unsupported CID version {version}")
        codec, pos = decode_varint(data, pos)
        if codec not in _CODEC_NAMES:
            raise ValueError(f"unsupported codec {codec:#x} (Kizuna stores raw and dag-pb)")
        hash_code, pos = decode_varint(data, pos)
        if hash_code != SHA2_256:
            raise ValueError(f"unsupported multihash {hash_code:#x} (only sha2-256)")
        length, pos = decode_varint(data, pos)
        if length != SHA2_256_LENGTH:
            raise ValueError(f"sha2-256 digest length {length}, expected 32")
        if len(data) < pos + length:
            raise ValueError("truncated digest")
        return cls(codec=codec, digest=bytes(data[pos : pos + length])), pos + length


@functools.lru_cache(maxsize=4096)
def _text_of(cid: ContentId) -> Cid:
    # Cached: every read of a record spells its CID (block paths, stream names) several times.
    encoded = base64.b32encode(cid.to_bytes()).decode("ascii").rstrip("=").lower()
    return Cid("b" + encoded)


def parse_cid(text: str) -> ContentId:
    """Parse a CID string (v1 base32 / base58btc, or v0). Raises :class:`InvalidCid` saying why."""
    if not isinstance(text, str):
        raise InvalidCid(repr(text), "a CID is a string")
    return _parse_text(text)


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> ContentId:
    # Cached (a ContentId is immutable; a refusal raises and is not cached).
    if not text:
        raise InvalidCid(text, "empty")
    if len(text) > _MAX_CID_TEXT:
        raise InvalidCid(text[:40] + "...", f"longer than {_MAX_CID_TEXT} characters")
    try:
        if len(text) == 46 and text.startswith("Qm"):
            raw = _b58decode(text)
            if len(raw) != 34 or raw[:2] != bytes((SHA2_256, SHA2_256_LENGTH)):
                raise ValueError("not a CIDv0 (a 34-byte sha2-256 multihash in base58btc)")
            return ContentId.from_bytes(raw)
        prefix, body = text[0], text[1:]
        if prefix == "b":
            if body != body.lower():
                raise ValueError("multibase 'b' is lower-case base32")
            raw = _b32decode(body)
        elif prefix == "B":
            if body != body.upper():
                raise ValueError("multibase 'B' is upper-case base32")
            raw = _b32decode(body)
        elif prefix == "z":
            raw = _b58decode(body)
        else:
            raise ValueError(f"unsupported multibase prefix {prefix!r} (expected 'b', 'B' or 'z')")
        cid = ContentId.from_bytes(raw)
        if cid.version != 1:
            raise ValueError("a CIDv0 is written in base58btc without a multibase prefix")
        return cid
    except ValueError as exc:
        raise InvalidCid(text, str(exc)) from None


def _b32decode(body: str) -> bytes:
    if not body:
        raise ValueError("no data after the multibase prefix")
    padded = body.upper() + "=" * (-len(body) % 8)
    try:
        return base64.b32decode(padded)
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise ValueError(f"not base32: {exc}") from None


def _b58decode(body: str) -> bytes:
    if not body:
        raise ValueError("no data after the multibase prefix")
    number = 0
    for char in body:
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"{char!r} is not a base58btc character")
        number = number * 58 + digit
    leading_zeros = len(body) - len(body.lstrip("1"))
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * leading_zeros + raw


__all__ = [
    "DAG_PB",
    "RAW",
    "SHA2_256",
    "ContentId",
    "decode_varint",
    "encode_varint",
    "parse_cid",
]
