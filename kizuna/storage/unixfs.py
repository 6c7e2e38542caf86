"""UnixFS files as IPFS builds them: fixed-size chunks, a balanced DAG, dag-pb nodes.

The importer gives a byte stream exactly the CID ``ipfs add --cid-version=1 --raw-leaves
--chunker=size-262144`` gives it (Kubo and js-ipfs agree; the tests check against a real node):

* the bytes are cut into 262144-byte chunks (the last one shorter); an empty file is one empty
  chunk. Each chunk is a **raw** block (codec 0x55) named by the sha2-256 of its bytes.
* A file of one chunk *is* that raw block: its CID is the leaf's CID.
* Otherwise the leaves are grouped left to right, 174 per parent, into dag-pb nodes (codec 0x70);
  the parents are grouped the same way, level after level, until one node — the root — is left
  (the "balanced" layout). A group of one still gets a parent; only a lone leaf is its own root.
* A dag-pb node is the protobuf ``PBNode``: its ``Links`` (field 2) written *before* its ``Data``
  (field 1), as dag-pb's canonical form demands. Each ``PBLink`` holds ``Hash`` (1, the binary
  CID), ``Name`` (2, the empty string, written) and ``Tsize`` (3, the bytes of the whole subtree:
  the child's own block plus everything under it). ``Data`` is a UnixFS ``Data`` message:
  ``Type`` (1) = File (2), ``filesize`` (3) = bytes under the node, one ``blocksizes`` (4, not
  packed) per link = the file bytes under that link.

Streaming: the importer holds one chunk buffer and at most 173 pending links per tree level, so
memory does not grow with the file. Blocks go to a ``sink`` as they are made (children before
parents, the root last), which is how the embedded store writes them and the IPFS client checks
the node's answer. :func:`iter_file` walks a stored DAG back into bytes, verifying each block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from kizuna.errors import ContentNotFound, StorageError
from kizuna.storage.cid import DAG_PB, RAW, ContentId, decode_varint, encode_varint

CHUNK_SIZE = 262_144
"""Bytes per leaf: IPFS's default fixed-size chunker (``size-262144``)."""
MAX_LINKS = 174
"""Links per dag-pb node in the balanced layout (IPFS's default)."""

UNIXFS_RAW = 0
UNIXFS_DIRECTORY = 1
UNIXFS_FILE = 2

BlockSink = Callable[[ContentId, memoryview], None]
"""Receives each block as it is made; must consume the bytes before returning (the buffer is
reused)."""
BlockLoader = Callable[[ContentId], bytes]
"""Returns the bytes of a stored block (verified or not: :func:`iter_file` re-hashes them)."""


class ContentIntegrityError(StorageError):
    """Stored or served bytes do not match their CID, or a DAG node is malformed."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The root CID of an imported file and its size in bytes."""

    cid: ContentId
    size: int
    blocks: int


@dataclass(frozen=True, slots=True)
class _Link:
    cid: ContentId
    tsize: int
    filesize: int


class Importer:
    """Streams bytes in; :meth:`finish` returns the root CID. One importer per file."""

    def __init__(self, sink: BlockSink | None = None) -> None:
        self._sink = sink
        self._buffer = bytearray(CHUNK_SIZE)
        self._view = memoryview(self._buffer)
        self._filled = 0
        self._levels: list[list[_Link]] = [[]]
        self._size = 0
        self._blocks = 0
        self._leaves = 0
        self._finished = False

    # -- input ------------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes (any length) to the file."""
        if self._finished:
            raise RuntimeError("importer already finished")
        view = memoryview(data).cast("B")
        pos = 0
        total = len(view)
        while pos < total:
            if self._filled == 0 and total - pos >= CHUNK_SIZE:
                # A whole chunk straight from the caller's buffer: no copy.
                self._leaf(view[pos : pos + CHUNK_SIZE])
                pos += CHUNK_SIZE
                continue
            take = min(CHUNK_SIZE - self._filled, total - pos)
            self._view[self._filled : self._filled + take] = view[pos : pos + take]
            self._filled += take
            pos += take
            if self._filled == CHUNK_SIZE:
                self._leaf(self._view)
                self._filled = 0

    def write_from(self, source: BinaryIO) -> None:
        """Read a binary file object to its end, chunk by chunk, into the reused buffer."""
        readinto = getattr(source, "readinto", None)
        if readinto is None:
            for piece in iter(lambda: source.read(CHUNK_SIZE), b""):
                self.write(piece)
            return
        while True:
            got = readinto(self._view[self._filled :])
            if not got:
                return
            self._filled += got
            if self._filled == CHUNK_SIZE:
                self._leaf(self._view)
                self._filled = 0

    def finish(self) -> ImportResult:
        """Flush the last chunk, close every level of the tree, return the root."""
        if self._finished:
            raise RuntimeError("importer already finished")
        self._finished = True
        if self._filled or self._leaves == 0:
            self._leaf(self._view[: self._filled])
            self._filled = 0
        level = 0
        while True:
            pending = self._levels[level]
            higher = any(self._levels[j] for j in range(level + 1, len(self._levels)))
            if not higher and len(pending) == 1:
                root = pending[0]
                return ImportResult(cid=root.cid, size=self._size, blocks=self._blocks)
            if pending:
                self._levels[level] = []
                self._push(level + 1, self._parent(pending))
            level += 1

    # -- tree building ----------------------------------------------------------------------

    def _leaf(self, chunk: memoryview) -> None:
        cid = ContentId(codec=RAW, digest=hashlib.sha256(chunk).digest())
        if self._sink is not None:
            self._sink(cid, chunk)
        size = len(chunk)
        self._size += size
        self._blocks += 1
        self._leaves += 1
        self._push(0, _Link(cid, size, size))

    def _push(self, level: int, link: _Link) -> None:
        if level == len(self._levels):
            self._levels.append([])
        links = self._levels[level]
        links.append(link)
        if len(links) == MAX_LINKS:
            self._levels[level] = []
            self._push(level + 1, self._parent(links))

    def _parent(self, links: list[_Link]) -> _Link:
        block = encode_file_node(links)
        cid = ContentId(codec=DAG_PB, digest=hashlib.sha256(block).digest())
        if self._sink is not None:
            self._sink(cid, memoryview(block))
        self._blocks += 1
        return _Link(
            cid,
            len(block) + sum(link.tsize for link in links),
            sum(link.filesize for link in links),
        )


def import_bytes(source: BinaryIO | Iterable[bytes], sink: BlockSink | None = None) -> ImportResult:
    """Import a whole binary file object or iterable of byte strings; return the root."""
    importer = Importer(sink)
    if hasattr(source, "read"):
        importer.write_from(source)  # type: ignore[arg-type]
    else:
        for piece in source:
            importer.write(piece)
    return importer.finish()


def compute_cid(data: bytes | BinaryIO | Iterable[bytes]) -> ContentId:
    """The CID an IPFS node gives these bytes with ``add --cid-version=1 --raw-leaves``."""
    if isinstance(data, bytes | bytearray | memoryview):
        importer = Importer()
        importer.write(data)
        return importer.finish().cid
    return import_bytes(data).cid


# --- dag-pb / UnixFS protobuf encoding ---------------------------------------------------------


def _field(number: int, wire_type: int) -> bytes:
    return encode_varint((number << 3) | wire_type)


_TAG_NODE_DATA = _field(1, 2)
_TAG_NODE_LINK = _field(2, 2)
_TAG_LINK_HASH = _field(1, 2)
_TAG_LINK_NAME = _field(2, 2)
_TAG_LINK_TSIZE = _field(3, 0)
_TAG_FS_TYPE = _field(1, 0)
_TAG_FS_DATA = _field(2, 2)
_TAG_FS_FILESIZE = _field(3, 0)
_TAG_FS_BLOCKSIZE = _field(4, 0)


def encode_file_node(links: Iterable[_Link]) -> bytes:
    """A canonical dag-pb ``PBNode`` for a UnixFS File node over these children."""
    out = bytearray()
    unixfs = bytearray(_TAG_FS_TYPE + encode_varint(UNIXFS_FILE))
    blocksizes = bytearray()
    filesize = 0
    for link in links:
        cid_bytes = link.cid.to_bytes()
        body = (
            _TAG_LINK_HASH
            + encode_varint(len(cid_bytes))
            + cid_bytes
            + _TAG_LINK_NAME
            + b"\x00"
            + _TAG_LINK_TSIZE
            + encode_varint(link.tsize)
        )
        out += _TAG_NODE_LINK + encode_varint(len(body)) + body
        blocksizes += _TAG_FS_BLOCKSIZE + encode_varint(link.filesize)
        filesize += link.filesize
    unixfs += _TAG_FS_FILESIZE + encode_varint(filesize) + blocksizes
    out += _TAG_NODE_DATA + encode_varint(len(unixfs)) + unixfs
    return bytes(out)


@dataclass(frozen=True, slots=True)
class PbLink:
    """A decoded dag-pb link."""

    cid: ContentId
    name: str
    tsize: int | None


@dataclass(frozen=True, slots=True)
class PbNode:
    """A decoded dag-pb node: its links and its (UnixFS) data."""

    links: tuple[PbLink, ...]
    data: bytes | None


@dataclass(frozen=True, slots=True)
class UnixFsData:
    """A decoded UnixFS ``Data`` message (the fields Kizuna reads)."""

    type: int
    data: bytes
    filesize: int | None
    blocksizes: tuple[int, ...]


def _fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Protobuf fields as ``(number, wire type, value)``; ``ValueError`` when malformed."""
    view = memoryview(buf)
    pos = 0
    end = len(view)
    while pos < end:
        key, pos = decode_varint(view, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire_type == 0:
            value, pos = decode_varint(view, pos)
            yield number, wire_type, value
        elif wire_type == 2:
            length, pos = decode_varint(view, pos)
            if pos + length > end:
                raise ValueError("length-delimited field runs past the end")
            yield number, wire_type, view[pos : pos + length]
            pos += length
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        if pos > end:
            raise ValueError("field runs past the end")


def decode_node(block: bytes | memoryview) -> PbNode:
    """Decode a dag-pb ``PBNode``. ``ValueError`` when it is not one."""
    links: list[PbLink] = []
    data: bytes | None = None
    for number, wire_type, value in _fields(block):
        if number == 2 and isinstance(value, memoryview):
            links.append(_decode_link(value))
        elif number == 1 and isinstance(value, memoryview):
            data = bytes(value)
        else:
            raise ValueError(f"unexpected PBNode field {number} (wire type {wire_type})")
    return PbNode(links=tuple(links), data=data)


def _decode_link(buf: memoryview) -> PbLink:
    cid: ContentId | None = None
    name = ""
    tsize: int | None = None
    for number, _wire, value in _fields(buf):
        if number == 1 and isinstance(value, memoryview):
            cid = ContentId.from_bytes(value)
        elif number == 2 and isinstance(value, memoryview):
            name = bytes(value).decode("utf-8")
        elif number == 3 and isinstance(value, int):
            tsize = value
        else:
            raise ValueError(f"unexpected PBLink field {number}")
    if cid is None:
        raise ValueError("PBLink without Hash")
    return PbLink(cid=cid, name=name, tsize=tsize)


def decode_unixfs(buf: bytes | memoryview) -> UnixFsData:
    """Decode a UnixFS ``Data`` message. ``ValueError`` when it is not one."""
    kind: int | None = None
    data = b""
    filesize: int | None = None
    blocksizes: list[int] = []
    for number, _wire, value in _fields(buf):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, memoryview):
            data = bytes(value)
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4 and isinstance(value, int):
            blocksizes.append(value)
        elif number == 4 and isinstance(value, memoryview):  # packed, as some writers do
            pos = 0
            while pos < len(value):
                size, pos = decode_varint(value, pos)
                blocksizes.append(size)
        # hashType, fanout, mode, mtime: not needed to read a file's bytes.
    if kind is None:
        raise ValueError("UnixFS Data without Type")
    return UnixFsData(type=kind, data=data, filesize=filesize, blocksizes=tuple(blocksizes))


# --- reading a DAG back ------------------------------------------------------------------------


def verified_block(cid: ContentId, block: bytes) -> bytes:
    """Return ``block`` if it hashes to ``cid``; else raise :class:`ContentIntegrityError`."""
    if hashlib.sha256(block).digest() != cid.digest:
        raise ContentIntegrityError(
            f"block {cid} is corrupted: its bytes hash to a different digest"
        )
    return block


def iter_file(root: ContentId, load: BlockLoader) -> Iterator[bytes]:
    """The bytes of the UnixFS file under ``root``, block by block, each block verified.

    ``load`` raises :class:`ContentNotFound` for a missing block; a missing *child* block
    becomes a :class:`ContentIntegrityError` (the DAG is incomplete, the content is damaged).
    Memory: one block plus one decoded node per tree level.
    """
    produced = 0
    expected: int | None = None
    stack: list[Iterator[PbLink]] = []
    cid: ContentId | None = root
    while True:
        if cid is not None:
            try:
                block = verified_block(cid, load(cid))
            except ContentNotFound:
                if cid == root:
                    raise
                raise ContentIntegrityError(
                    f"content {root} is incomplete: block {cid} is missing"
                ) from None
            if cid.codec == RAW:
                produced += len(block)
                if block:
                    yield block
            else:
                node = _decode_file_node(cid, block)
                if cid == root and node.data is not None:
                    expected = decode_unixfs(node.data).filesize
                if node.data is not None:
                    inline = decode_unixfs(node.data).data
                    if inline:
                        produced += len(inline)
                        yield inline
                stack.append(iter(node.links))
            cid = None
        if not stack:
            break
        link = next(stack[-1], None)
        if link is None:
            stack.pop()
        else:
            cid = link.cid
    if expected is not None and produced != expected:
        raise ContentIntegrityError(
            f"content {root} is damaged: {produced} bytes read, its root says {expected}"
        )


def walk_blocks(
    root: ContentId, load: BlockLoader, *, seen: set[ContentId] | None = None
) -> Iterator[tuple[ContentId, bytes]]:
    """Every block of the DAG under ``root`` once, parents before children, each verified.

    ``seen`` (shared across several roots) skips blocks already produced. A missing child is a
    :class:`ContentIntegrityError`; a missing root is ``load``'s :class:`ContentNotFound`.
    """
    seen = set() if seen is None else seen
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        try:
            block = verified_block(cid, load(cid))
        except ContentNotFound:
            if cid == root:
                raise
            raise ContentIntegrityError(
                f"content {root} is incomplete: block {cid} is missing"
            ) from None
        seen.add(cid)
        yield cid, block
        if cid.codec == DAG_PB:
            try:
                links = decode_node(block).links
            except ValueError as exc:
                raise ContentIntegrityError(f"block {cid} is not dag-pb: {exc}") from None
            stack.extend(link.cid for link in reversed(links))


def _decode_file_node(cid: ContentId, block: bytes) -> PbNode:
    try:
        node = decode_node(block)
        if node.data is None:
            raise ValueError("dag-pb node without UnixFS data")
        kind = decode_unixfs(node.data).type
    except ValueError as exc:
        raise ContentIntegrityError(f"block {cid} is not a UnixFS file node: {exc}") from None
    if kind not in (UNIXFS_FILE, UNIXFS_RAW):
        raise ContentIntegrityError(f"block {cid} is a UnixFS node of type {kind}, not a file")
    return node


__all__ = [
    "CHUNK_SIZE",
    "MAX_LINKS",
    "BlockLoader",
    "BlockSink",
    "ContentIntegrityError",
    "ImportResult",
    "Importer",
    "PbLink",
    "PbNode",
    "UnixFsData",
    "compute_cid",
    "decode_node",
    "decode_unixfs",
    "encode_file_node",
    "import_bytes",
    "iter_file",
    "verified_block",
    "walk_blocks",
]
