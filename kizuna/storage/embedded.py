"""The embedded content store: a local directory of IPFS blocks, named exactly as IPFS names them.

On disk (``root`` is the configured store path)::

    root/
      STORE                     marker: "kizuna-blocks 3" (format and version of this layout)
      blocks/<xy>/<cid>         one file per block written by put / import_car, its bytes
                                exactly the IPFS block; <cid> is the base32 CIDv1, <xy> its
                                next-to-last two characters (the sharding IPFS's flatfs uses —
                                the first characters are the same for every CID of a codec and
                                would not spread anything); all 1,024 shard directories are
                                made when the store is created
      packs/<random>.pack       the blocks of one put_many call (a staging request's
                                envelopes) in ONE file with its index (kizuna.storage.pack);
                                renamed here only once complete and fsynced
      pins/<cid>                an empty file per root pinned by put / pin / import_car
      pins.log                  the roots pinned by put_many and pin_many: appended lines
                                "+<cid>" (pinned) and "-<cid>" (unpinned), one append per
                                call, fsynced; gc rewrites it with only the live "+" lines
      LOCK                      flock: shared while a put / pin / CAR import runs, exclusive
                                for gc (so gc never deletes a block a put is reusing)
      tmp/put-<pid>-<random>/   blocks of a put (or the pack of a put_many: pack-<pid>-...)
                                in progress (removed when it ends or fails; leftovers of
                                crashed processes are removed when a store opens)

A put streams the source through the UnixFS importer (:mod:`kizuna.storage.unixfs`): every
block is written into the put's own staging directory and fsynced (on background threads, so
the flush overlaps with hashing); only when the whole source has been read and every staged
block is durable is each block renamed into ``blocks/`` (children first, the root last) and the
directories fsynced. A crash (or an error from the source) before that leaves nothing in
``blocks/``; a crash during the renames leaves complete, valid blocks but no root — content is
visible exactly when its root block is. Blocks already present are not written again.

:meth:`EmbeddedStore.put_many` appends the new blocks of all its sources to one pack in its
staging directory; the pack (blocks, index, trailer) is fsynced, renamed into ``packs/`` and
the directory fsynced, then the pins appended to ``pins.log`` and fsynced: three fsyncs of its
own files per call, where one file per block cost ~1,000 creations and renames and a flush of
the whole file system per staging request. A pack without a valid trailer and index (torn,
truncated, damaged) shows none of its blocks. Each process keeps the index of the packs it
has read; a lookup it cannot answer lists ``packs/`` again (another instance may have written
one), and a pack gone from under it (another process's gc) reads as not found.

A get walks the DAG from the root and re-hashes every block before handing out its bytes (from
a block file or a pack alike), so a block corrupted on disk raises
:class:`~kizuna.storage.unixfs.ContentIntegrityError` instead of returning wrong bytes.
:meth:`EmbeddedStore.export_car` writes the blocks under given roots as a CARv1 that
``/api/v0/dag/import`` loads into any IPFS node under the same CIDs.

A root is pinned when its pin file exists or its last line in ``pins.log`` is ``+``; ``unpin``
removes both. Older layouts are upgraded in place when opened (version 1: no ``pins.log``, no
pre-made shards; version 2: no ``packs/``): each layout is a superset of the one before, and
older code refuses a newer marker, so it can never collect blocks only ``pins.log`` pins or
miss blocks that live in packs.

``unpin`` only drops the pin; :meth:`EmbeddedStore.gc` then deletes every block no pinned root
reaches (as ``ipfs repo gc`` does), so content put with ``pin=False`` lives until the next gc:
a block file is deleted, a pack with no live block is deleted, and a pack with some is
rewritten with only its live blocks (the new pack durable before the old one goes). A put
renews the mtime of every block (or pack) it reuses, and ``gc(grace_s=...)`` spares blocks
(packs) written or reused within the grace period: the service unpins a refused upload's
envelope while a concurrent upload of the same envelope may still be on its way to re-pinning
it (the service runs gc periodically, ``kizuna.storage.gc``; ``kizuna store gc`` runs it once).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kizuna.errors import ContentNotFound, KizunaError, StorageError
from kizuna.filemodes import PRIVATE_DIR, PRIVATE_FILE, private_dir
from kizuna.storage.car import CarReader, write_car
from kizuna.storage.cid import DAG_PB, ContentId, parse_cid
from kizuna.storage.pack import PackEntry, PackWriter, read_block, read_index
from kizuna.storage.store import ByteSource, ContentStream
from kizuna.storage.unixfs import (
    ContentIntegrityError,
    Importer,
    decode_node,
    iter_file,
    verified_block,
    walk_blocks,
)
from kizuna.types import Cid

_MARKER = "kizuna-blocks 3\n"
_MARKER_V2 = "kizuna-blocks 2\n"
_MARKER_V1 = "kizuna-blocks 1\n"
_PACK_SUFFIX = ".pack"


@dataclass(frozen=True, slots=True)
class GcResult:
    """What :meth:`EmbeddedStore.gc` did."""

    blocks_removed: int
    bytes_freed: int
    blocks_kept: int
    blocks_spared: int = 0
    """Unreachable blocks left because they were written or reused within the grace period."""


class EmbeddedStore:
    """A content-addressed block directory computing IPFS's CIDs. See the module docstring."""

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        """Open (creating if needed) the store at ``root``.

        ``fsync=False`` skips the fsyncs (faster, for throw-away stores): a crash may then lose
        recent puts, but still never exposes a partial one.
        """
        self.root = Path(root)
        self._fsync = fsync
        self._blocks = self.root / "blocks"
        self._blocks_dir = str(self._blocks)
        self._pins = self.root / "pins"
        self._pin_log = self.root / "pins.log"
        self._tmp = self.root / "tmp"
        self._packs = self.root / "packs"
        self._packs_dir = str(self._packs)
        # The packs this process has read: block CID -> (pack name, where in it), and each
        # pack's blocks (None: torn, none visible). Other processes add packs (and gc deletes
        # them): a lookup that misses lists packs/ again (_refresh_packs).
        self._pack_index: dict[str, tuple[str, PackEntry]] = {}
        self._pack_members: dict[str, list[str] | None] = {}
        self._index_lock = threading.Lock()
        self._shards: set[str] = set()  # shard directories known to exist
        try:
            # 0700 whatever the umask or an existing directory's mode (logged when tightened):
            # the blocks are ciphertext, but which CIDs a patient has, and when, is not public.
            private_dir(self.root)
            # Several processes may open one fresh store at once (service instances starting
            # together): the first creates it while the others wait on the directory's lock,
            # then find the marker instead of a half-created store.
            root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fcntl.flock(root_fd, fcntl.LOCK_EX)
                self._open_or_create()
            finally:
                os.close(root_fd)  # releases the lock
            # the shard directories there are: a put makes only the ones it needs that are
            # missing (a mkdir of one that exists costs as much as making it, ~1,000 a staging
            # request; all 1,024 up front cost a new store ~50 ms and its removal ~85 ms)
            self._shards.update(entry.name for entry in os.scandir(self._blocks))
        except OSError as exc:
            raise StorageError(f"cannot open the store at {self.root}: {exc}") from exc
        self._remove_stale_puts()

    def _open_or_create(self) -> None:
        """Check the format marker, or create the store in an empty directory (under the
        directory's lock, see ``__init__``)."""
        marker = self.root / "STORE"
        if marker.exists():
            found = marker.read_text(encoding="utf-8", errors="replace")
            if found not in (_MARKER, _MARKER_V2, _MARKER_V1):
                raise StorageError(
                    f"{self.root} holds a store of another format ({found.strip()!r})"
                )
            upgrade = found != _MARKER
        else:
            existing = [p.name for p in self.root.iterdir()]
            if existing:
                raise StorageError(
                    f"{self.root} is not empty and not a Kizuna store (found {existing[:3]})"
                )
            upgrade = True
        for directory in (self._blocks, self._pins, self._tmp, self._packs):
            directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        if upgrade:  # new, version 1 or 2: packs/ made, then marker 3
            if self._fsync:
                _fsync_dir(self.root)
            self._write_atomic(marker, _MARKER.encode())

    # -- ContentStore -----------------------------------------------------------------------

    def put(self, source: ByteSource, *, pin: bool = True) -> Cid:
        with self._lock(exclusive=False):
            return self._put(source, pin=pin)

    def _put(self, source: ByteSource, *, pin: bool) -> Cid:
        staging = self._tmp / f"put-{os.getpid()}-{secrets.token_hex(8)}"
        staged: list[tuple[Path, Path]] = []
        syncer = _Syncer(enabled=self._fsync)
        try:
            staging.mkdir(mode=PRIVATE_DIR)
            cid = self._import(source, self._sink(staging, staged, set(), syncer))
            syncer.wait()  # every staged block is on disk before any becomes visible
            for directory in self._publish(staged):
                syncer.directory(directory)
            syncer.wait()
        except OSError as exc:
            raise StorageError(f"writing to the store at {self.root} failed: {exc}") from exc
        finally:
            syncer.close()
            shutil.rmtree(staging, ignore_errors=True)
        if pin:
            self._pin_root(cid)
        return cid

    def put_many(self, sources: Iterable[ByteSource], *, pin: bool = True) -> list[Cid]:
        """Store several sources as one write: every new block of every source is appended
        to ONE pack file (:mod:`kizuna.storage.pack`) in this call's staging directory, which
        is fsynced, renamed into ``packs/`` and the directory fsynced — only then are its
        blocks visible — and the pins are ONE append to ``pins.log``, fsynced. Three fsyncs of
        this call's own files per call, whatever the number of sources and blocks (``put``
        fsyncs each block; a file-system flush would also flush every other writer's data).
        A source that raises keeps nothing of any source; a crash leaves at most a staging
        directory (removed when a store opens), or a pack whose roots are not pinned
        (collected by gc), or a torn last line of ``pins.log`` that its readers skip (its call
        never returned)."""
        with self._lock(exclusive=False):
            cids: list[Cid] = []
            try:
                with self._new_pack() as pack:

                    def sink(cid: ContentId, block: memoryview) -> None:
                        text = cid.text()
                        if text not in pack and not self._reuse(text):
                            pack.add(text, block)

                    for source in sources:
                        cids.append(self._import(source, sink))
                if pin and cids:
                    self._log_pins("+", dict.fromkeys(cids), durable=True)
            except OSError as exc:
                raise StorageError(f"writing to the store at {self.root} failed: {exc}") from exc
            return cids

    @contextlib.contextmanager
    def _new_pack(self) -> Iterator[PackWriter]:
        """A pack to fill, in a staging directory of this process; when the block ends without
        an error (and the pack holds anything) it is finished (fsynced), renamed into
        ``packs/`` and the directory fsynced: its blocks are visible from then on."""
        staging = self._tmp / f"pack-{os.getpid()}-{secrets.token_hex(8)}"
        writer: PackWriter | None = None
        try:
            staging.mkdir(mode=PRIVATE_DIR)
            name = secrets.token_hex(16) + _PACK_SUFFIX
            writer = PackWriter(str(staging / name), fsync=self._fsync)
            yield writer
            if writer.entries:
                entries = writer.finish()
                os.replace(writer.path, f"{self._packs_dir}/{name}")
                if self._fsync:
                    _fsync_dir(self._packs)
                self._remember_pack(name, entries)
        finally:
            if writer is not None:
                writer.close()
            shutil.rmtree(staging, ignore_errors=True)

    def _sink(self, staging: Path, staged: list[tuple[Path, Path]], staged_names: set[str],
              syncer: _Syncer) -> Callable[[ContentId, memoryview], None]:
        """The importer's block sink: each new block written into ``staging`` (and handed to
        ``syncer``), remembered in ``staged`` with its final path; blocks already in the store
        are only touched (their mtime renewed for gc's grace)."""

        def sink(cid: ContentId, block: memoryview) -> None:
            text = cid.text()
            if text in staged_names:  # the same chunk twice in one put (e.g. zeros)
                return
            final = self._block_path(text)
            if self._reuse(text):  # present already: its mtime renewed for gc's grace
                return
            staged_names.add(text)
            temp = staging / text
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
            try:
                view = block
                while view:
                    view = view[os.write(fd, view) :]
            except BaseException:
                os.close(fd)
                raise
            syncer.file(fd)  # fsynced (when enabled) and closed
            staged.append((temp, final))

        return sink

    @staticmethod
    def _import(source: ByteSource, sink: Callable[[ContentId, memoryview], None]) -> Cid:
        """Run ``source`` through the UnixFS importer into ``sink``; the root's CID."""
        importer = Importer(sink)
        if isinstance(source, bytes | bytearray | memoryview):
            importer.write(source)
        elif hasattr(source, "read"):
            importer.write_from(source)  # type: ignore[arg-type]
        else:
            for piece in source:
                importer.write(piece)
        return importer.finish().cid.text()

    def _reuse(self, text: str) -> bool:
        """Whether block ``text`` is in the store (a block file, or a pack this process
        knows: an unknown one only costs a second copy), its file's mtime renewed for gc's
        grace period."""
        if _touch(self._block_path(text)):
            return True
        found = self._pack_index.get(text)
        if found is None:
            return False
        if _touch(Path(self._packs_dir, found[0])):
            return True
        self._forget_pack(found[0])  # gc deleted it
        return False

    def _publish(self, staged: list[tuple[Path, Path]]) -> set[Path]:
        """Rename staged blocks into place, in order (children first, each root last); the
        shard directories touched."""
        touched = {final.parent for _, final in staged}
        self._ensure_shards(touched)
        for temp, final in staged:
            os.replace(temp, final)
        return touched

    def get(self, cid: str) -> ContentStream:
        parsed = self._parse(cid)
        text = parsed.text()
        if not self._exists(text):
            raise ContentNotFound(text)
        return ContentStream(iter_file(parsed, self._load), cid=text)

    def has(self, cid: str) -> bool:
        return self._exists(self._parse(cid).text())

    def pin(self, cid: str) -> None:
        with self._lock(exclusive=False):
            self._pin_root(self._require(cid))

    def pin_many(self, cids: Iterable[str]) -> None:
        """Pin every one of ``cids`` (each checked present first) with ONE append to
        ``pins.log`` and one fsync of it, where :meth:`pin` writes a pin file (two fsyncs)."""
        wanted = [self._require(cid) for cid in dict.fromkeys(cids)]
        if wanted:
            with self._lock(exclusive=False):  # not while gc rewrites the log
                self._log_pins("+", wanted, durable=True)

    def unpin(self, cid: str) -> None:
        text = self._require(cid)
        with contextlib.suppress(FileNotFoundError):
            (self._pins / text).unlink()
        if self._pin_log.exists():
            with self._lock(exclusive=False):  # not while gc rewrites the log
                self._log_pins("-", [text])

    def close(self) -> None:
        """Nothing to release: every operation opens and closes its own files."""

    # -- beyond the interface ---------------------------------------------------------------

    def pins(self) -> list[Cid]:
        """The pinned roots (pin files and ``pins.log``), sorted."""
        files = {p.name for p in self._pins.iterdir() if not p.name.startswith(".")}
        return sorted(Cid(name) for name in files | self._logged_pins())

    def _logged_pins(self) -> set[str]:
        """The roots ``pins.log`` pins: each one's last complete line is ``+``. A line cut by
        a crash (no newline) or otherwise unreadable is skipped: its call never returned."""
        try:
            text = self._pin_log.read_bytes().decode("ascii", errors="replace")
        except FileNotFoundError:
            return set()
        pinned: set[str] = set()
        lines = text.split("\n")
        for line in lines[:-1]:  # the last piece has no newline: empty, or torn
            if len(line) < 2 or line[0] not in "+-":
                continue
            name = line[1:]
            try:
                if parse_cid(name).to_v1().text() != name:
                    continue
            except (ValueError, KizunaError):
                continue
            if line[0] == "+":
                pinned.add(name)
            else:
                pinned.discard(name)
        return pinned

    def _log_pins(self, sign: str, cids: Iterable[str], *, durable: bool = False) -> None:
        """Append ``sign`` lines for ``cids`` to ``pins.log`` in one write, starting on a line
        of its own (a torn line of a crashed writer stays alone, and is skipped). ``durable``:
        fsynced before returning (and the directory, when this made the log); else durable
        with the caller's flush or the next one."""
        data = ("\n" + "".join(f"{sign}{cid}\n" for cid in cids)).encode("ascii")
        created = durable and not self._pin_log.exists()
        fd = os.open(self._pin_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable and self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if created and self._fsync:
            _fsync_dir(self.root)

    def export_car(self, out: BinaryIO, roots: Iterable[str]) -> int:
        """Write the DAGs under ``roots`` as one CARv1 to ``out``; return the bytes written.

        Every block is read back and verified first; a block shared by several roots is written
        once. ``ContentNotFound`` when a root is absent (before anything is written).
        """
        parsed = [self._parse(root) for root in roots]
        if not parsed:
            raise StorageError("a CAR export needs at least one root")
        for root in parsed:
            if not self._exists(root.text()):
                raise ContentNotFound(root.text())
        seen: set[ContentId] = set()

        def blocks() -> Iterable[tuple[ContentId, bytes]]:
            for root in parsed:
                yield from walk_blocks(root, self._load, seen=seen)

        return write_car(out, parsed, blocks())

    def import_car(self, source: BinaryIO, *, pin: bool = True) -> list[Cid]:
        """Store every block of a CARv1 (each verified against its CID); return its roots.

        The same staging rule as :meth:`put` applies: blocks become visible only after the
        whole file has been read and checked.
        """
        with self._lock(exclusive=False):
            return self._import_car(source, pin=pin)

    def gc(self, *, grace_s: float = 0.0) -> GcResult:
        """Delete every block no pinned root reaches (unpinned content, leftovers of crashes)
        and that was not written or reused in the last ``grace_s`` seconds.

        Holds the store's exclusive lock: puts, pins and CAR imports (which hold it shared)
        wait, so a block a put is about to reuse is never deleted under it. A pinned DAG with
        an unreadable node raises :class:`ContentIntegrityError` and deletes nothing.
        """
        cutoff = time.time() - grace_s
        with self._lock(exclusive=True):
            live: set[str] = set()
            stack = [parse_cid(name).to_v1() for name in self.pins()]
            while stack:
                cid = stack.pop()
                text = cid.text()
                if text in live:
                    continue
                live.add(text)
                if cid.codec == DAG_PB:
                    try:
                        links = decode_node(verified_block(cid, self._load(cid))).links
                    except (ValueError, ContentNotFound, ContentIntegrityError) as exc:
                        raise ContentIntegrityError(
                            f"pinned DAG node {text} is unreadable ({exc}); nothing deleted"
                        ) from None
                    stack.extend(link.cid.to_v1() for link in links)
            removed = freed = spared = 0
            self._refresh_packs()
            for name, members in list(self._pack_members.items()):
                kept = [text for text in members or [] if text in live]
                if members and len(kept) == len(members):
                    continue
                path = self._packs / name
                try:
                    info = path.stat()
                except FileNotFoundError:
                    self._forget_pack(name)
                    continue
                if grace_s > 0 and info.st_mtime > cutoff:  # written or reused lately
                    spared += len(members or []) - len(kept)
                    continue
                if kept:
                    self._repack(kept)  # the live blocks into a pack of their own first
                path.unlink()
                self._forget_pack(name)
                removed += len(members or []) - len(kept)
                freed += info.st_size
            for shard in self._blocks.iterdir():
                for block in shard.iterdir():
                    if block.name in live:
                        continue
                    info = block.stat()
                    if grace_s > 0 and info.st_mtime > cutoff:
                        spared += 1
                        continue
                    block.unlink()
                    removed += 1
                    freed += info.st_size
            self._compact_pin_log()
            return GcResult(blocks_removed=removed, bytes_freed=freed, blocks_kept=len(live),
                            blocks_spared=spared)

    def _repack(self, texts: list[str]) -> None:
        """Write blocks ``texts`` (read from where they are) into a new pack, durable and
        visible before gc deletes the pack they came from (a crash in between leaves both:
        the same blocks twice, no block lost)."""
        with self._new_pack() as pack:
            for text in texts:
                cid = parse_cid(text)
                pack.add(text, verified_block(cid, self._load(cid)))

    def _compact_pin_log(self) -> None:
        """Rewrite ``pins.log`` with only the roots it pins (under gc's exclusive lock: no
        append runs meanwhile), atomically, so it does not grow with every unpin."""
        if not self._pin_log.exists():
            return
        pinned = sorted(self._logged_pins())
        self._write_atomic(self._pin_log, "".join(f"+{cid}\n" for cid in pinned).encode())

    def _import_car(self, source: BinaryIO, *, pin: bool) -> list[Cid]:
        staging = self._tmp / f"car-{os.getpid()}-{secrets.token_hex(8)}"
        staging.mkdir(mode=PRIVATE_DIR)
        try:
            reader = CarReader(source)
            staged: list[tuple[Path, Path]] = []
            for cid, block in reader:
                text = cid.to_v1().text()
                final = self._block_path(text)
                if final.exists() or (staging / text).exists():
                    continue
                temp = staging / text
                self._write_file(temp, block)
                staged.append((temp, final))
            for temp, final in staged:
                self._ensure_shards((final.parent,))
                os.replace(temp, final)
                if self._fsync:
                    _fsync_dir(final.parent)
        except OSError as exc:
            raise StorageError(f"importing a CAR into {self.root} failed: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        roots = [root.to_v1().text() for root in reader.header.roots]
        for root in roots:
            if not self._block_path(root).exists():
                raise StorageError(f"the CAR names root {root} but does not hold its block")
            if pin:
                self._pin_root(root)
        return roots

    # -- internals --------------------------------------------------------------------------

    def _block_file(self, text: str) -> str:
        """Where block ``text`` lives (``blocks/<shard>/<cid>``), as a string: the read path
        builds no ``Path`` objects."""
        return f"{self._blocks_dir}/{text[-3:-1]}/{text}"

    def _block_path(self, text: str) -> Path:
        return Path(self._block_file(text))

    def _parse(self, cid: str) -> ContentId:
        return parse_cid(cid).to_v1()

    def _require(self, cid: str) -> Cid:
        text = self._parse(cid).text()
        if not self._exists(text):
            raise ContentNotFound(text)
        return text

    def _load(self, cid: ContentId) -> bytes:
        """Block ``cid``'s bytes: from a pack this process knows (no failed lookup of a block
        file first: a history read back is mostly packs), else its block file, else a pack
        new to this process."""
        text = cid.text()
        known = self._pack_index.get(text)
        if known is not None:
            data = self._pack_block(text, known)
            if data is not None:
                return data
        try:
            with open(self._block_file(text), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot read block {text}: {exc}") from exc
        found = self._pack_of(text)
        data = self._pack_block(text, found) if found is not None else None
        if data is None:
            raise ContentNotFound(text)
        return data

    def _pack_block(self, text: str, found: tuple[str, PackEntry]) -> bytes | None:
        """The block from its pack; ``None`` when the pack is gone (gc deleted it)."""
        try:
            return read_block(f"{self._packs_dir}/{found[0]}", found[1])
        except FileNotFoundError:
            self._forget_pack(found[0])
            return None
        except OSError as exc:
            raise StorageError(f"cannot read block {text}: {exc}") from exc

    # -- packs --------------------------------------------------------------------------------

    def _exists(self, text: str) -> bool:
        known = self._pack_index.get(text)
        if known is not None:
            if os.path.exists(f"{self._packs_dir}/{known[0]}"):
                return True
            self._forget_pack(known[0])  # another process's gc deleted it
        return os.path.exists(self._block_file(text)) or self._pack_of(text) is not None

    def _pack_of(self, text: str) -> tuple[str, PackEntry] | None:
        """Which pack holds block ``text`` (packs/ listed again when none this process knows
        does: another process may have written it since)."""
        found = self._pack_index.get(text)
        if found is None:
            self._refresh_packs()
            found = self._pack_index.get(text)
        return found

    def _refresh_packs(self) -> None:
        """Read the index of every pack new in packs/ (a torn one: remembered, none of its
        blocks visible); forget the ones gone (another process's gc)."""
        try:
            names = {n for n in os.listdir(self._packs_dir) if n.endswith(_PACK_SUFFIX)}
        except FileNotFoundError:
            return
        for gone in set(self._pack_members) - names:
            self._forget_pack(gone)
        for name in names - set(self._pack_members):
            try:
                entries = read_index(f"{self._packs_dir}/{name}")
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(f"cannot read pack {name}: {exc}") from exc
            self._remember_pack(name, entries)

    def _remember_pack(self, name: str, entries: dict[str, PackEntry] | None) -> None:
        with self._index_lock:
            self._pack_members[name] = list(entries) if entries is not None else None
            for text, entry in (entries or {}).items():
                self._pack_index[text] = (name, entry)

    def _forget_pack(self, name: str) -> None:
        with self._index_lock:
            for text in self._pack_members.pop(name, None) or []:
                if self._pack_index.get(text, (None,))[0] == name:
                    del self._pack_index[text]

    def blocks(self) -> set[Cid]:
        """The CID of every block the store holds (block files and packs)."""
        self._refresh_packs()
        found = {Cid(entry.name) for shard in os.scandir(self._blocks)
                 for entry in os.scandir(shard.path)}
        return found | {Cid(text) for text in self._pack_index}

    @contextlib.contextmanager
    def _lock(self, *, exclusive: bool) -> Iterator[None]:
        """The store-wide lock (``flock`` on ``LOCK``): shared for writers, exclusive for gc."""
        fd = os.open(self.root / "LOCK", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _ensure_shards(self, directories: Iterable[Path]) -> None:
        """Make the shard directories of ``blocks/`` that are missing, durable (one fsync of
        ``blocks/``) before any block is renamed into them."""
        made = False
        for directory in directories:
            if directory.name not in self._shards:
                # exist_ok: another process may have made it since this one looked; its entry
                # is then synced here too, not trusted to that process
                directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
                self._shards.add(directory.name)
                made = True
        if made and self._fsync:
            _fsync_dir(self._blocks)

    def _pin_root(self, cid: Cid) -> None:
        path = self._pins / cid
        if not path.exists():
            self._write_atomic(path, b"")

    def _write_file(self, path: Path, data: bytes) -> None:
        with open(path, "wb") as handle:
            handle.write(data)
            if self._fsync:
                handle.flush()
                os.fsync(handle.fileno())

    def _write_atomic(self, path: Path, data: bytes) -> None:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            self._write_file(temp, data)
            os.replace(temp, path)
            if self._fsync:
                _fsync_dir(path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise StorageError(f"cannot write {path}: {exc}") from exc

    def _remove_stale_puts(self) -> None:
        """Remove staging directories whose process is gone (crashed mid-put)."""
        for entry in self._tmp.iterdir():
            parts = entry.name.split("-")
            if len(parts) != 3 or not parts[1].isdigit():
                continue
            if not _process_alive(int(parts[1])):
                shutil.rmtree(entry, ignore_errors=True)


class _Syncer:
    """fsyncs files and directories on a few background threads, so the disk's flush latency
    overlaps with reading and hashing the source (and the caller's encryption) instead of
    adding to them. :meth:`wait` returns when everything submitted is durable (or raises the
    first failure)."""

    _WORKERS = 4
    _MAX_PENDING = 64  # open descriptors waiting for their fsync

    def __init__(self, *, enabled: bool) -> None:
        self._pool = (
            ThreadPoolExecutor(self._WORKERS, thread_name_prefix="kizuna-fsync")
            if enabled
            else None
        )
        self._pending: deque[Future[None]] = deque()

    def file(self, fd: int) -> None:
        """Take ownership of ``fd``: fsync it (when enabled), then close it."""
        if self._pool is None:
            os.close(fd)
            return
        if len(self._pending) >= self._MAX_PENDING:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(_fsync_close, fd))

    def directory(self, path: Path) -> None:
        if self._pool is not None:
            self._pending.append(self._pool.submit(_fsync_dir, path))

    def wait(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        """Finish (or drain after a failure) and stop the threads; every fd gets closed."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pending.clear()


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _touch(path: Path) -> bool:
    """Renew ``path``'s mtime; ``False`` when it does not exist."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except PermissionError:  # another user's block: present, only its grace is not renewed
        pass
    return True


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["EmbeddedStore", "GcResult"]
