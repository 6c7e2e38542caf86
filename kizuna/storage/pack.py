"""Pack files of the embedded store: many blocks in one file, made durable with one fsync.

A staging request stores ~500 envelopes; one file per block cost ~1,000 file creations and
renames and a flush of the whole file system (``syncfs``, which also flushes every other
process's dirty pages: seconds on a busy disk). A pack is ONE file, written sequentially and
fsynced once (:mod:`kizuna.storage.embedded` says where packs live and when they are visible).

Layout (integers big-endian)::

    b"KZPACK1\\n"                              8 bytes, the format
    block bytes, back to back                  each exactly its IPFS block
    index: per block, len(cid) (2) ‖ cid (ASCII, base32 CIDv1) ‖ offset (8) ‖ length (4)
    trailer: index offset (8) ‖ index length (8) ‖ SHA-256 of the index (32) ‖ b"KZPKEND1"

The trailer is written last, so a pack cut anywhere (a crash, a truncated copy) has no valid
trailer, or one whose index offset and length do not add up to the file's size, or an index
whose digest does not match: :func:`read_index` answers ``None`` and none of its blocks is
visible. A block's own bytes are checked against its CID whenever it is read (``unixfs``), so
the index digest guards only the index.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from kizuna.filemodes import PRIVATE_FILE

MAGIC = b"KZPACK1\n"
END = b"KZPKEND1"
_TRAILER = 8 + 8 + 32 + len(END)


@dataclass(frozen=True, slots=True)
class PackEntry:
    """Where a block lies in its pack."""

    offset: int
    length: int


class PackWriter:
    """Writes one pack at ``path`` (a new file): :meth:`add` blocks, then :meth:`finish`
    (index, trailer, fsync) or :meth:`close` (the caller removes the unfinished file)."""

    def __init__(self, path: str, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        self._offset = 0
        self.entries: dict[str, PackEntry] = {}
        self._write(MAGIC)

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self._offset += len(data)

    def __contains__(self, cid: str) -> bool:
        return cid in self.entries

    def add(self, cid: str, block: bytes | memoryview) -> None:
        """Append ``block`` under ``cid`` (a CID added already is skipped)."""
        if cid in self.entries:
            return
        self.entries[cid] = PackEntry(self._offset, len(block))
        self._write(block)

    def finish(self) -> dict[str, PackEntry]:
        """Write the index and trailer, fsync, close; the entries."""
        index = b"".join(len(cid).to_bytes(2, "big") + cid.encode("ascii")
                         + entry.offset.to_bytes(8, "big") + entry.length.to_bytes(4, "big")
                         for cid, entry in self.entries.items())
        start = self._offset
        self._write(index + start.to_bytes(8, "big") + len(index).to_bytes(8, "big")
                    + hashlib.sha256(index).digest() + END)
        if self._fsync:
            os.fsync(self._fd)
        self.close()
        return self.entries

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_index(path: str) -> dict[str, PackEntry] | None:
    """The blocks of the pack at ``path``; ``None`` when it is torn or not a pack (see the
    module docstring). ``FileNotFoundError`` when there is no such file."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < len(MAGIC) + _TRAILER or handle.read(len(MAGIC)) != MAGIC:
            return None
        handle.seek(size - _TRAILER)
        trailer = handle.read(_TRAILER)
        if trailer[-len(END):] != END:
            return None
        start = int.from_bytes(trailer[:8], "big")
        length = int.from_bytes(trailer[8:16], "big")
        if start < len(MAGIC) or start + length + _TRAILER != size:
            return None
        handle.seek(start)
        index = handle.read(length)
    if len(index) != length or hashlib.sha256(index).digest() != trailer[16:48]:
        return None
    entries: dict[str, PackEntry] = {}
    at = 0
    while at < length:
        if at + 2 > length:
            return None
        name_length = int.from_bytes(index[at:at + 2], "big")
        end = at + 2 + name_length + 12
        if end > length:
            return None
        try:
            cid = index[at + 2:at + 2 + name_length].decode("ascii")
        except UnicodeDecodeError:
            return None
        offset = int.from_bytes(index[end - 12:end - 4], "big")
        block_length = int.from_bytes(index[end - 4:end], "big")
        if offset < len(MAGIC) or offset + block_length > start:
            return None
        entries[cid] = PackEntry(offset, block_length)
        at = end
    return entries


def read_block(path: str, entry: PackEntry) -> bytes:
    """The bytes of one block of the pack at ``path`` (``FileNotFoundError`` when the pack
    is gone; a short read — a pack changed under us — is the caller's integrity check)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, entry.length, entry.offset)
    finally:
        os.close(fd)


__all__ = ["MAGIC", "PackEntry", "PackWriter", "read_block", "read_index"]
