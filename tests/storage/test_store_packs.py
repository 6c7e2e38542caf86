"""Pack files of the embedded store (format 3): put_many's blocks in one file per call. A torn
pack shows none of its blocks, a pack's blocks survive reopening and are seen by other
processes, gc deletes or repacks packs, and a version 2 store opens under the new code."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from store_data import CHUNK, pseudo_random_bytes

from kizuna.errors import ContentNotFound
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.pack import read_index
from kizuna.storage.unixfs import compute_cid


def _sources(count: int, *, seed: int = 0) -> list[bytes]:
    return [pseudo_random_bytes(700 + 13 * i, seed=seed + i) for i in range(count)]


def _packs(store: EmbeddedStore) -> list[Path]:
    return sorted((store.root / "packs").iterdir())


def _read(store: EmbeddedStore, cid: str) -> bytes:
    with store.get(cid) as stream:
        return stream.read()


def test_a_packs_blocks_survive_reopening(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    datas = [*_sources(30), pseudo_random_bytes(2 * CHUNK + 9, seed=77)]
    cids = store.put_many(datas)
    assert len(_packs(store)) == 1
    reopened = EmbeddedStore(tmp_path / "s")
    assert set(reopened.pins()) == set(cids)
    for cid, data in zip(cids, datas, strict=True):
        assert reopened.has(cid) and _read(reopened, cid) == data
    # the multi-block one: its leaves and root all in the pack, none a block file
    assert not any(p.is_file() for p in (reopened.root / "blocks").rglob("*"))
    assert len(reopened.blocks()) == 30 + 3 + 1


def test_a_torn_pack_is_ignored_and_none_of_its_blocks_visible(tmp_path: Path) -> None:
    """Cut the pack at random points (what a crash or a bad copy leaves), or damage its
    index: a store opened on it sees none of its blocks, and answers ContentNotFound."""
    source = EmbeddedStore(tmp_path / "source")
    datas = _sources(12)
    cids = source.put_many(datas, pin=False)
    (pack,) = _packs(source)
    whole = pack.read_bytes()
    assert read_index(str(pack)) is not None
    cuts = [*random.Random(5).sample(range(len(whole)), 40), 0, 7, 8, len(whole) - 1]
    damaged = [whole[:cut] for cut in cuts]
    index_at = int.from_bytes(whole[-56:-48], "big")
    flipped = bytearray(whole)
    flipped[index_at + 5] ^= 0x01  # a byte of the index: its digest no longer matches
    damaged.append(bytes(flipped))
    damaged.append(whole + b"\0" * 10)  # zeros after the trailer: the trailer is not last
    root = tmp_path / "torn"
    EmbeddedStore(root, fsync=False)
    for number, data in enumerate(damaged):
        for left in (root / "packs").iterdir():
            left.unlink()
        (root / "packs" / pack.name).write_bytes(data)
        store = EmbeddedStore(root, fsync=False)
        assert store.blocks() == set(), f"cut {number}"
        for cid in cids:
            assert not store.has(cid)
            with pytest.raises(ContentNotFound):
                store.get(cid)
        # the same envelopes put again are stored afresh, readable
        assert store.put_many(datas[:2]) == cids[:2] and _read(store, cids[0]) == datas[0]


def test_another_process_sees_a_new_pack_and_gc_elsewhere_is_not_a_crash(
        tmp_path: Path) -> None:
    """Service instances share one store: a pack written by one is read by the other (which
    opened the store before it existed); a pack another process's gc deleted reads as not
    found, and a put of the same content writes it again."""
    here = EmbeddedStore(tmp_path / "s")
    data = _sources(3, seed=40)
    writer = ("import sys\nfrom kizuna.storage.embedded import EmbeddedStore\n"
              "from store_data import pseudo_random_bytes\n"
              "s = EmbeddedStore(sys.argv[1])\n"
              "print(' '.join(s.put_many([pseudo_random_bytes(700 + 13 * i, seed=40 + i)"
              " for i in range(3)], pin=False)))\n")
    done = subprocess.run([sys.executable, "-c", writer, str(tmp_path / "s")], check=True,
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent)
    cids = done.stdout.split()
    assert cids == [compute_cid(d).text() for d in data]
    assert all(here.has(c) for c in cids) and _read(here, cids[1]) == data[1]
    collector = ("import sys\nfrom kizuna.storage.embedded import EmbeddedStore\n"
                 "print(EmbeddedStore(sys.argv[1]).gc().blocks_removed)\n")
    done = subprocess.run([sys.executable, "-c", collector, str(tmp_path / "s")], check=True,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["3"] and _packs(here) == []
    with pytest.raises(ContentNotFound):
        _read(here, cids[0])  # this process still had the pack in its index
    assert not here.has(cids[0])
    assert here.put_many(data[:1]) == cids[:1] and _read(here, cids[0]) == data[0]


def test_gc_deletes_dead_packs_and_repacks_the_live_blocks_of_mixed_ones(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    dead = store.put_many(_sources(4, seed=10), pin=False)
    mixed_data = _sources(5, seed=20)
    mixed = store.put_many(mixed_data)
    store.unpin(mixed[0])
    store.unpin(mixed[3])
    old = set(_packs(store))
    assert store.gc(grace_s=3600).blocks_spared == 4 + 2  # everything is recent: spared
    assert set(_packs(store)) == old
    result = store.gc()
    assert (result.blocks_removed, result.blocks_kept) == (4 + 2, 3)
    (repacked,) = _packs(store)
    assert repacked not in old
    fresh = EmbeddedStore(tmp_path / "s")
    for cid in [*dead, mixed[0], mixed[3]]:
        assert not fresh.has(cid)
    for index in (1, 2, 4):
        assert _read(fresh, mixed[index]) == mixed_data[index]
        assert _read(store, mixed[index]) == mixed_data[index]
    assert fresh.gc().blocks_removed == 0 and _packs(fresh) == [repacked]


def test_a_version_2_store_opens_as_version_3_with_its_blocks_and_pins(tmp_path: Path) -> None:
    """What the previous code left (marker 2, block files, pin files and pins.log, no packs/)
    opens under this code: marker 3, everything readable, put_many writes packs beside it,
    and gc collects both kinds."""
    store = EmbeddedStore(tmp_path / "s")
    big = pseudo_random_bytes(CHUNK + 3, seed=8)
    single = store.put(big)
    loose = store.put(b"unpinned, written by version 2", pin=False)
    logged = compute_cid(b"pinned in pins.log by version 2").text()
    store.put(b"pinned in pins.log by version 2", pin=False)
    (store.root / "pins.log").write_text(f"+{logged}\n")
    shutil.rmtree(store.root / "packs")
    (store.root / "STORE").write_text("kizuna-blocks 2\n")
    blocks = store.blocks()

    reopened = EmbeddedStore(tmp_path / "s")
    assert (reopened.root / "STORE").read_text() == "kizuna-blocks 3\n"
    assert (reopened.root / "packs").is_dir() and reopened.blocks() == blocks
    assert set(reopened.pins()) == {single, logged}
    assert _read(reopened, single) == big
    added = reopened.put_many(_sources(2, seed=60))
    assert set(EmbeddedStore(tmp_path / "s").pins()) == {single, logged, *added}
    result = reopened.gc()
    assert result.blocks_removed == 1 and not reopened.has(loose)
    assert all(reopened.has(c) for c in (single, logged, *added))
