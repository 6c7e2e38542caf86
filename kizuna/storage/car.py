"""CARv1 files: the blocks of one or more DAGs in one stream, as IPFS imports and exports them.

Layout (https://ipld.io/specs/transport/car/carv1/)::

    varint(len(header)) header                    header = DAG-CBOR {"roots": [CID...],
                                                                      "version": 1}
    varint(len(cid) + len(block)) cid block       one section per block, binary CIDv1

The header is the only CBOR in the format and its shape is fixed, so it is written (and read)
by hand: a map of two text keys in DAG-CBOR's canonical order (shorter key first: ``roots``,
``version``), each root a CBOR tag 42 byte string holding ``0x00`` + the binary CID.
``/api/v0/dag/import`` on an IPFS node stores the blocks under the very same CIDs, so content moves
from the embedded store to an IPFS network without any mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from kizuna.errors import StorageError
from kizuna.storage.cid import ContentId, decode_varint, encode_varint
from kizuna.storage.unixfs import verified_block

_MAX_HEADER = 1 << 20
_MAX_SECTION = 4 << 20  # a block plus its CID; IPFS blocks are at most 1-4 MiB


class CarFormatError(StorageError):
    """A byte stream is not a CARv1 file Kizuna can read."""


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([(major << 5) | value])
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * width):
            return bytes([(major << 5) | extra]) + value.to_bytes(width, "big")
    raise ValueError("CBOR value too large")


def _cbor_text(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _cbor_head(3, len(raw)) + raw


def encode_header(roots: Iterable[ContentId]) -> bytes:
    """The DAG-CBOR header ``{"roots": [...], "version": 1}``, length-prefixed."""
    roots = list(roots)
    body = bytearray(_cbor_head(5, 2))
    body += _cbor_text("roots") + _cbor_head(4, len(roots))
    for root in roots:
        link = b"\x00" + root.to_v1().to_bytes()
        body += b"\xd8\x2a" + _cbor_head(2, len(link)) + link
    body += _cbor_text("version") + _cbor_head(0, 1)
    return encode_varint(len(body)) + bytes(body)


def write_car(
    out: BinaryIO, roots: Iterable[ContentId], blocks: Iterable[tuple[ContentId, bytes]]
) -> int:
    """Write a CARv1 with these roots and blocks (in the order given); return bytes written."""
    written = out.write(encode_header(roots)) or 0
    for cid, block in blocks:
        cid_bytes = cid.to_v1().to_bytes()
        written += out.write(encode_varint(len(cid_bytes) + len(block))) or 0
        written += out.write(cid_bytes) or 0
        written += out.write(block) or 0
    return written


@dataclass(frozen=True, slots=True)
class CarHeader:
    roots: tuple[ContentId, ...]
    version: int


class CarReader:
    """Reads a CARv1 stream: :attr:`header` first, then iterate ``(cid, block)`` verified."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        length = self._varint(allow_eof=False)
        if length is None or not 0 < length <= _MAX_HEADER:
            raise CarFormatError(f"CAR header length {length} is out of range")
        self.header = _decode_header(self._exact(length, "header"))

    def __iter__(self) -> Iterator[tuple[ContentId, bytes]]:
        while True:
            length = self._varint(allow_eof=True)
            if length is None:
                return
            if not 0 < length <= _MAX_SECTION:
                raise CarFormatError(f"CAR section length {length} is out of range")
            section = self._exact(length, "section")
            try:
                cid, offset = ContentId.read(section, 0)
            except ValueError as exc:
                raise CarFormatError(f"CAR section with a bad CID: {exc}") from None
            yield cid, verified_block(cid, section[offset:])

    def _exact(self, length: int, what: str) -> bytes:
        data = self._source.read(length)
        if len(data) != length:
            raise CarFormatError(f"CAR {what} truncated: {len(data)} of {length} bytes")
        return data

    def _varint(self, *, allow_eof: bool) -> int | None:
        raw = bytearray()
        while True:
            byte = self._source.read(1)
            if not byte:
                if not raw and allow_eof:
                    return None
                raise CarFormatError("CAR truncated inside a length prefix")
            raw += byte
            if not byte[0] & 0x80:
                return decode_varint(bytes(raw))[0]
            if len(raw) > 9:
                raise CarFormatError("CAR length prefix longer than 9 bytes")


class _HeaderReader:
    """The few CBOR items a CAR header holds, read in order from ``data``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def head(self) -> tuple[int, int]:
        """(major type, argument) of the next item."""
        if self.pos >= len(self.data):
            raise CarFormatError("CAR header truncated")
        first = self.data[self.pos]
        self.pos += 1
        major, info = first >> 5, first & 31
        if info < 24:
            return major, info
        width = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
        if width is None or self.pos + width > len(self.data):
            raise CarFormatError("CAR header uses CBOR Kizuna does not read")
        value = int.from_bytes(self.data[self.pos : self.pos + width], "big")
        self.pos += width
        return major, value

    def take(self, length: int) -> bytes:
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value

    def text(self) -> str:
        major, length = self.head()
        if major != 3:
            raise CarFormatError("CAR header map key is not text")
        return self.take(length).decode("utf-8", "replace")

    def root(self) -> ContentId:
        """A root: a CID as DAG-CBOR links it (tag 42, a byte string with a 0x00 prefix)."""
        major, tag = self.head()
        kind, length = self.head()
        if major != 6 or tag != 42 or kind != 2 or length < 2:
            raise CarFormatError("CAR root is not a CID (tag 42 byte string)")
        link = self.take(length)
        if link[0] != 0:
            raise CarFormatError("CAR root CID lacks the 0x00 multibase prefix")
        try:
            return ContentId.from_bytes(link[1:])
        except ValueError as exc:
            raise CarFormatError(f"CAR root is not a valid CID: {exc}") from None


def _decode_header(data: bytes) -> CarHeader:
    """Decode the fixed-shape DAG-CBOR header (a map with ``roots`` and ``version``)."""
    reader = _HeaderReader(data)
    major, entries = reader.head()
    if major != 5:
        raise CarFormatError("CAR header is not a CBOR map")
    roots: list[ContentId] = []
    version: int | None = None
    for _ in range(entries):
        key = reader.text()
        if key == "version":
            major, version = reader.head()
            if major != 0:
                raise CarFormatError("CAR version is not an unsigned integer")
        elif key == "roots":
            major, count = reader.head()
            if major != 4:
                raise CarFormatError("CAR roots is not an array")
            roots.extend(reader.root() for _ in range(count))
        else:
            raise CarFormatError(f"CAR header has an unknown key {key!r}")
    if version != 1:
        raise CarFormatError(f"CAR version {version} is not 1 (only CARv1 is read)")
    return CarHeader(roots=tuple(roots), version=version)


__all__ = ["CarFormatError", "CarHeader", "CarReader", "encode_header", "write_car"]
