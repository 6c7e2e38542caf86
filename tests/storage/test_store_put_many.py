"""put_many: many sources (a staging request's envelopes) as one write — the same CIDs and
bytes as single puts, one pack file and three fsyncs for all their blocks instead of an fsync
per block, and all or nothing (a failing source, or a crash, keeps nothing of the call)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from store_data import CHUNK, pseudo_random_bytes

from kizuna.errors import ContentNotFound, InputError, StorageError
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.ipfs import IpfsStore
from kizuna.storage.localipfs import LocalIpfsNode
from kizuna.storage.unixfs import compute_cid


def _blocks(store: EmbeddedStore) -> set[str]:
    """Every block the store holds, in block files or packs (a fresh store's reading)."""
    return set(EmbeddedStore(store.root).blocks())


def _sources(count: int, *, size: int = 3000) -> list[bytes]:
    return [pseudo_random_bytes(size + i, seed=i) for i in range(count)]


def test_put_many_gives_each_source_its_cid_pinned_and_readable(embedded: EmbeddedStore) -> None:
    datas = [*_sources(5), b"", pseudo_random_bytes(2 * CHUNK + 5, seed=99)]
    datas.append(datas[0])  # the same envelope twice in one request: one set of blocks
    cids = embedded.put_many(iter(datas))
    assert cids == [compute_cid(d).text() for d in datas]
    assert set(embedded.pins()) == set(cids)
    for cid, data in zip(cids, datas, strict=True):
        with embedded.get(cid) as stream:
            assert stream.read() == data
    assert not any((embedded.root / "tmp").iterdir())


def test_put_many_without_pin_pins_nothing(embedded: EmbeddedStore) -> None:
    cids = embedded.put_many(_sources(3), pin=False)
    assert embedded.pins() == [] and all(embedded.has(c) for c in cids)


def test_put_many_writes_one_pack_with_three_fsyncs_where_put_fsyncs_every_block(
        embedded: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted, not mocked: the real fsyncs run, a wrapper counts them — the pack, the packs
    directory and pins.log; no block file and no flush of the whole file system."""
    counts = {"fsync": 0}
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        counts["fsync"] += 1
        real_fsync(fd)

    embedded.put_many([b"the first call also makes pins.log (and fsyncs the store's directory)"])
    monkeypatch.setattr(os, "fsync", counting_fsync)
    # Generators, as a request body is parsed: each source consumed before the next is made.
    embedded.put_many(iter([d[:100], d[100:]]) for d in _sources(200, size=500))
    assert counts == {"fsync": 3}
    assert len(list((embedded.root / "packs").iterdir())) == 2
    assert not any(p.is_file() for p in (embedded.root / "blocks").rglob("*"))
    for data in _sources(3, size=501):
        embedded.put(data)
    assert counts["fsync"] >= 3 + 3  # a single put still fsyncs its block (and its pin)


def test_a_failing_source_keeps_nothing_of_any_source(embedded: EmbeddedStore) -> None:
    before = _blocks(embedded)
    kept = embedded.put(b"an earlier record, kept")

    def sources() -> Iterator[Iterator[bytes]]:
        for i, data in enumerate(_sources(4)):
            def chunks(data: bytes = data, i: int = i) -> Iterator[bytes]:
                yield data[:1000]
                if i == 2:
                    raise InputError("envelope", "the third one is bad")
                yield data[1000:]
            yield chunks()

    with pytest.raises(InputError, match="third one"):
        embedded.put_many(sources())
    assert _blocks(embedded) == before | {kept}
    assert embedded.pins() == [kept]
    assert not any((embedded.root / "tmp").iterdir())


_CRASHER = """
import os, sys
from kizuna.storage.embedded import EmbeddedStore
store = EmbeddedStore(sys.argv[1])
def sources():
    yield os.urandom(5000)
    yield os.urandom(3 * 262144)
    os._exit(9)  # killed between two envelopes of the request
store.put_many(sources())
"""


def test_a_crash_during_put_many_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    EmbeddedStore(root)
    done = subprocess.run([sys.executable, "-c", _CRASHER, str(root)], timeout=60,
                          capture_output=True)
    assert done.returncode == 9, done.stderr.decode()
    assert any((root / "tmp").iterdir())  # the dead process's staging directory
    reopened = EmbeddedStore(root)
    assert _blocks(reopened) == set() and reopened.pins() == []
    assert not any((root / "tmp").iterdir())


def test_ipfs_put_many_round_trip_and_a_failing_source_pins_nothing(
        ipfs_store: IpfsStore, ipfs_node: LocalIpfsNode) -> None:
    salt = str(time.time_ns()).encode()
    datas = [salt + d for d in _sources(3)]
    cids = ipfs_store.put_many(datas)
    assert cids == [compute_cid(d).text() for d in datas]
    for cid, data in zip(cids, datas, strict=True):
        with ipfs_store.get(cid) as stream:
            assert stream.read() == data

    fresh = [salt + b"fresh " + d for d in _sources(2)]

    def sources() -> Iterator[bytes | Iterator[bytes]]:
        yield fresh[0]

        def broken() -> Iterator[bytes]:
            yield fresh[1][:10]
            raise InputError("envelope", "cut short")
        yield broken()

    with pytest.raises(InputError):
        ipfs_store.put_many(sources())
    def pinned(cid: str) -> bool:
        listed = httpx.post(f"{ipfs_node.api_url}/api/v0/pin/ls",
                            params={"arg": cid, "type": "recursive", "cid-base": "base32"})
        return listed.status_code == 200 and cid in listed.text

    assert not pinned(compute_cid(fresh[0]).text())
    assert pinned(cids[0])  # the check can see a pin


def test_put_many_pins_in_one_log_that_survives_reopening_unpin_and_gc(tmp_path: Path) -> None:
    """The pins of put_many are lines of pins.log, not a file each; a reopened store reads
    them, unpin drops one, gc collects its blocks and rewrites the log with the live pins."""
    store = EmbeddedStore(tmp_path / "s")
    cids = store.put_many(_sources(4))
    assert list((store.root / "pins").iterdir()) == []  # no pin file per envelope
    assert set(EmbeddedStore(tmp_path / "s").pins()) == set(cids)
    store.unpin(cids[1])
    reopened = EmbeddedStore(tmp_path / "s")
    assert set(reopened.pins()) == set(cids) - {cids[1]}
    result = reopened.gc()
    assert result.blocks_removed == 1 and not reopened.has(cids[1])
    assert all(reopened.has(c) for c in cids if c != cids[1])
    assert (store.root / "pins.log").read_text() == "".join(
        f"+{c}\n" for c in sorted(set(cids) - {cids[1]}))
    again = store.put_many([_sources(2)[1]])  # pinned again after an unpin: pinned
    assert again == [cids[1]] and set(EmbeddedStore(tmp_path / "s").pins()) == set(cids)


def test_a_torn_pin_log_line_is_skipped_and_the_next_append_is_whole(tmp_path: Path) -> None:
    """A crash in the middle of the append (its call never returned) leaves a line without
    its newline: readers skip it, and the next put_many's pins are read whole."""
    store = EmbeddedStore(tmp_path / "s")
    first = store.put_many(_sources(1))
    torn = compute_cid(b"never acknowledged").text()
    with (store.root / "pins.log").open("a") as log:
        log.write("+" + torn[:20])  # cut short by the crash
    assert store.pins() == first
    second = store.put_many(_sources(3)[2:])
    assert set(EmbeddedStore(tmp_path / "s").pins()) == {*first, *second}
    with (store.root / "pins.log").open("a") as log:
        log.write("\0\0\0\n+not-a-cid\n")  # zeros a crash can leave, garbage: skipped
    assert set(store.pins()) == {*first, *second}


def test_a_version_1_store_is_upgraded_in_place_and_its_pins_kept(tmp_path: Path) -> None:
    """A store written by the previous layout (marker 1, a pin file per root, shard
    directories made on demand) opens as version 3 with every pin and block as it was."""
    store = EmbeddedStore(tmp_path / "s")
    cid = store.put(pseudo_random_bytes(CHUNK + 7, seed=5))
    loose = store.put(b"unpinned", pin=False)
    blocks = _blocks(store)
    (store.root / "STORE").write_text("kizuna-blocks 1\n")
    for shard in (store.root / "blocks").iterdir():
        if not any(shard.iterdir()):
            shard.rmdir()
    reopened = EmbeddedStore(tmp_path / "s")
    assert (reopened.root / "STORE").read_text() == "kizuna-blocks 3\n"
    # shards are made as puts need them: none more than the blocks already had
    assert {d.name for d in (reopened.root / "blocks").iterdir()} == {
        b[-3:-1] for b in blocks}
    assert reopened.pins() == [cid] and _blocks(reopened) == blocks
    with reopened.get(cid) as stream:
        assert stream.read() == pseudo_random_bytes(CHUNK + 7, seed=5)
    assert reopened.gc().blocks_removed == 1 and not reopened.has(loose)
    (reopened.root / "STORE").write_text("kizuna-blocks 4\n")  # a newer layout: refused
    with pytest.raises(StorageError, match="another format"):
        EmbeddedStore(tmp_path / "s")


def test_pin_many_pins_every_root_with_one_fsync_and_refuses_an_absent_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the service's keep_stored re-pins after a staging request: one fsynced append to
    pins.log (it was a pin file and two fsyncs per envelope); an absent root pins none."""
    store = EmbeddedStore(tmp_path / "s")
    cids = store.put_many(_sources(20), pin=False)
    store.put_many([b"makes pins.log"])
    absent = compute_cid(b"never stored").text()
    with pytest.raises(ContentNotFound):
        store.pin_many([cids[0], absent])
    assert set(store.pins()) == {compute_cid(b"makes pins.log").text()}
    counts = {"fsync": 0}
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        counts["fsync"] += 1
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    store.pin_many(cids + cids[:3])
    assert counts == {"fsync": 1} and list((store.root / "pins").iterdir()) == []
    assert set(cids) <= set(EmbeddedStore(tmp_path / "s").pins())
