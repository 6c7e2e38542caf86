"""The embedded store: round trips, pins, atomic puts, verify-on-read, CAR export/import,
and the store chosen by configuration."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_data import CHUNK, pseudo_random, pseudo_random_bytes
from together import processes_at_once

from kizuna.config import Settings
from kizuna.errors import ConfigError, ContentNotFound, InvalidCid, StorageError
from kizuna.storage.car import CarFormatError, CarReader, encode_header
from kizuna.storage.cid import DAG_PB, RAW, parse_cid
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.ipfs import IpfsStore
from kizuna.storage.store import ContentStore, ContentStream, open_store
from kizuna.storage.unixfs import ContentIntegrityError, compute_cid

SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7]


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_gives_the_same_bytes_under_the_ipfs_cid(
    embedded: EmbeddedStore, size: int
) -> None:
    data = pseudo_random_bytes(size, seed=size)
    cid = embedded.put(data)
    assert cid == compute_cid(data).text()
    assert embedded.has(cid)
    with embedded.get(cid) as stream:
        assert b"".join(stream) == data


def test_put_accepts_file_objects_and_iterators(embedded: EmbeddedStore, tmp_path: Path) -> None:
    data = pseudo_random_bytes(2 * CHUNK + 3)
    path = tmp_path / "record.bin"
    path.write_bytes(data)
    with path.open("rb") as handle:
        from_file = embedded.put(handle)
    from_iter = embedded.put(iter([data[:10], data[10:]]))
    assert from_file == from_iter == embedded.put(data)


def test_stream_reads_in_any_sizes(embedded: EmbeddedStore) -> None:
    data = pseudo_random_bytes(CHUNK + 1000)
    cid = embedded.put(data)
    stream = embedded.get(cid)
    assert isinstance(stream, ContentStream) and stream.cid == cid
    parts = [stream.read(7), stream.read(CHUNK), stream.read(-1)]
    assert b"".join(parts) == data
    assert stream.read(5) == b""
    buffer = bytearray(100)
    again = embedded.get(cid)
    assert again.readinto(buffer) == 100 and bytes(buffer) == data[:100]
    again.close()
    assert again.closed


def test_the_embedded_store_is_a_content_store(embedded: EmbeddedStore) -> None:
    assert isinstance(embedded, ContentStore)


def test_layout_is_sharded_block_files(embedded: EmbeddedStore) -> None:
    data = pseudo_random_bytes(CHUNK + 1)
    cid = embedded.put(data)
    root_file = embedded.root / "blocks" / cid[-3:-1] / cid
    assert root_file.exists()
    leaf = compute_cid(data[:CHUNK]).text()
    assert (embedded.root / "blocks" / leaf[-3:-1] / leaf).read_bytes() == data[:CHUNK]
    assert (embedded.root / "STORE").read_text() == "kizuna-blocks 3\n"
    assert list((embedded.root / "tmp").iterdir()) == []


def test_shards_are_made_as_puts_need_them_and_synced_before_their_blocks(
        embedded: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new store has no shard directory; a put makes the ones its blocks need and syncs
    ``blocks/`` once (its entries durable before a block is renamed into them); a put whose
    shards exist syncs only its own shards. Counted, not mocked: the real fsyncs run."""
    assert list((embedded.root / "blocks").iterdir()) == []
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    data = pseudo_random_bytes(3 * CHUNK + 5, seed=11)
    cid = embedded.put(data)
    blocks_dir = str(embedded.root / "blocks")
    shards = {d.name for d in (embedded.root / "blocks").iterdir()}
    assert cid[-3:-1] in shards and 1 <= len(shards) <= 5  # 4 leaves and the root
    assert synced.count(blocks_dir) == 1
    synced.clear()
    embedded.put(data[: 3 * CHUNK])  # three known leaves under a new root
    made = {d.name for d in (embedded.root / "blocks").iterdir()} - shards
    assert synced.count(blocks_dir) == len(made)  # 1 if the root's shard is new, else 0
    with EmbeddedStore(embedded.root).get(cid) as stream:  # a fresh process reads them
        assert stream.read() == data


def test_same_content_twice_is_stored_once(embedded: EmbeddedStore) -> None:
    data = b"\0" * (4 * CHUNK)  # four identical chunks: one leaf block
    cid = embedded.put(data)
    assert embedded.put(data) == cid
    blocks = _files(embedded.root / "blocks")
    assert len(blocks) == 2  # the one zero leaf and the root
    assert embedded.get(cid).read() == data


def test_pins(embedded: EmbeddedStore) -> None:
    pinned = embedded.put(b"pinned")
    loose = embedded.put(b"loose", pin=False)
    assert embedded.pins() == [pinned]
    embedded.pin(loose)
    assert embedded.pins() == sorted([pinned, loose])
    embedded.unpin(pinned)
    embedded.unpin(pinned)  # idempotent
    assert embedded.pins() == [loose]
    assert embedded.has(pinned)  # unpinning does not delete


def test_missing_content_is_content_not_found(embedded: EmbeddedStore) -> None:
    absent = compute_cid(b"never stored").text()
    assert not embedded.has(absent)
    for call in (embedded.get, embedded.pin, embedded.unpin):
        with pytest.raises(ContentNotFound) as caught:
            call(absent)
        assert caught.value.cid == absent


@pytest.mark.parametrize("bad", ["", "not-a-cid", "bafy", "Qm123"])
def test_bad_cids_are_invalid_cid(embedded: EmbeddedStore, bad: str) -> None:
    for call in (embedded.get, embedded.has, embedded.pin, embedded.unpin):
        with pytest.raises(InvalidCid):
            call(bad)


def test_a_cidv0_or_base58_spelling_finds_the_same_content(embedded: EmbeddedStore) -> None:
    data = b"x" * (CHUNK + 1)
    cid = embedded.put(data)
    digest = parse_cid(cid).digest
    number = int.from_bytes(b"\x12\x20" + digest, "big")
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    v0 = ""
    while number:
        number, digit = divmod(number, 58)
        v0 = alphabet[digit] + v0
    assert embedded.get(v0).read() == data


# --- atomicity -------------------------------------------------------------------------------


class SourceFailed(RuntimeError):
    pass


def _failing_source(good_bytes: int) -> Iterator[bytes]:
    yield from pseudo_random(good_bytes, seed=77, piece=100_000)
    raise SourceFailed("the source broke off")


def test_a_put_that_fails_half_way_leaves_nothing_behind(embedded: EmbeddedStore) -> None:
    existing = embedded.put(b"already here")
    before = _files(embedded.root)
    with pytest.raises(SourceFailed):
        embedded.put(_failing_source(5 * CHUNK + 123))
    assert _files(embedded.root) == before  # no block, no partial file, no staging left
    assert list((embedded.root / "tmp").iterdir()) == []
    # none of the blocks the failed put had made is visible
    partial = pseudo_random_bytes(5 * CHUNK + 123, seed=77)
    assert not embedded.has(compute_cid(partial[:CHUNK]).text())
    assert embedded.pins() == [existing]


def test_a_crashed_put_staging_directory_is_cleaned_when_the_store_opens(
    tmp_path: Path,
) -> None:
    store = EmbeddedStore(tmp_path / "s")
    # What a process killed mid-put leaves: a staging directory with half a block in it.
    dead_pid = 2**22 + 12345  # above pid_max's default: no such process
    staging = store.root / "tmp" / f"put-{dead_pid}-deadbeef"
    staging.mkdir()
    (staging / "bafkreihalfwritten").write_bytes(b"\x01" * 1000)
    live = store.root / "tmp" / f"put-{os.getpid()}-cafecafe"
    live.mkdir()  # a put in progress in a live process is left alone
    reopened = EmbeddedStore(tmp_path / "s")
    assert not staging.exists()
    assert live.exists()
    assert _files(reopened.root / "blocks") == []


def test_processes_opening_one_fresh_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Service instances started together open the same new store: one creates it, the others
    wait and open it (before the directory lock, the others saw the creator's temporary marker
    file and refused the directory as "not a Kizuna store"). Three fresh stores, six processes
    opening each at the same moment."""
    roots = [tmp_path / f"store-{round_}" for round_ in range(3)]
    done = processes_at_once("from kizuna.storage.embedded import EmbeddedStore",
                             "EmbeddedStore(target)", [str(r) for r in roots], processes=6)
    assert done.returncode == 0, done.stderr[-2000:]
    for root in roots:
        assert (root / "STORE").read_text() == "kizuna-blocks 3\n"
        assert sorted(p.name for p in root.iterdir()) == ["STORE", "blocks", "packs", "pins",
                                                          "tmp"]


def test_a_directory_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(StorageError, match="not a Kizuna store"):
        EmbeddedStore(tmp_path / "x")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "STORE").write_text("something else 9\n")
    with pytest.raises(StorageError, match="another format"):
        EmbeddedStore(tmp_path / "y")


# --- verify on read --------------------------------------------------------------------------


def _block_file(store: EmbeddedStore, cid: str) -> Path:
    return store.root / "blocks" / cid[-3:-1] / cid


def test_a_corrupted_leaf_is_detected_on_read(embedded: EmbeddedStore) -> None:
    data = pseudo_random_bytes(3 * CHUNK)
    cid = embedded.put(data)
    leaf = compute_cid(data[CHUNK : 2 * CHUNK]).text()
    path = _block_file(embedded, leaf)
    corrupted = bytearray(path.read_bytes())
    corrupted[1000] ^= 0x40
    path.write_bytes(bytes(corrupted))
    stream = embedded.get(cid)
    first = next(stream)
    assert first == data[:CHUNK]  # blocks before the damage are fine
    with pytest.raises(ContentIntegrityError, match=f"block {leaf} is corrupted"):
        next(stream)


def test_a_corrupted_single_block_file_never_returns_bytes(embedded: EmbeddedStore) -> None:
    cid = embedded.put(b"a small record")
    _block_file(embedded, cid).write_bytes(b"a small recorD")
    with pytest.raises(ContentIntegrityError), embedded.get(cid) as stream:
        stream.read()


def test_a_missing_child_block_is_an_integrity_error(embedded: EmbeddedStore) -> None:
    data = pseudo_random_bytes(2 * CHUNK + 1)
    cid = embedded.put(data)
    _block_file(embedded, compute_cid(data[CHUNK : 2 * CHUNK]).text()).unlink()
    with pytest.raises(ContentIntegrityError, match="incomplete"):
        embedded.get(cid).read()


def test_a_truncated_root_node_is_detected(embedded: EmbeddedStore) -> None:
    cid = embedded.put(pseudo_random_bytes(2 * CHUNK))
    path = _block_file(embedded, cid)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ContentIntegrityError, match="corrupted"):
        embedded.get(cid).read()


# --- CAR -------------------------------------------------------------------------------------


def test_car_export_holds_every_block_once_and_imports_elsewhere(
    embedded: EmbeddedStore, tmp_path: Path
) -> None:
    first = pseudo_random_bytes(2 * CHUNK + 5, seed=1)
    second = first[: 2 * CHUNK] + b"other tail"  # shares two leaves with the first
    a = embedded.put(first)
    b = embedded.put(second)
    out = io.BytesIO()
    written = embedded.export_car(out, [a, b])
    assert written == len(out.getvalue())
    out.seek(0)
    reader = CarReader(out)
    assert [root.text() for root in reader.header.roots] == [a, b]
    sections = list(reader)
    cids = [cid for cid, _ in sections]
    assert len(cids) == len(set(cids)) == 2 + 2 + 2  # two roots, two shared leaves, two tails
    assert cids[0].text() == a and cids[0].codec == DAG_PB
    assert {cid.codec for cid in cids[1:]} <= {RAW, DAG_PB}

    other = EmbeddedStore(tmp_path / "other")
    out.seek(0)
    assert other.import_car(out) == [a, b]
    assert other.get(a).read() == first
    assert other.get(b).read() == second
    assert other.pins() == sorted([a, b])


def test_car_export_of_a_missing_root_writes_nothing(embedded: EmbeddedStore) -> None:
    out = io.BytesIO()
    with pytest.raises(ContentNotFound):
        embedded.export_car(out, [compute_cid(b"nope").text()])
    assert out.getvalue() == b""


def test_car_export_refuses_a_corrupted_block(embedded: EmbeddedStore) -> None:
    cid = embedded.put(b"exported")
    _block_file(embedded, cid).write_bytes(b"Exported")
    with pytest.raises(ContentIntegrityError):
        embedded.export_car(io.BytesIO(), [cid])


def test_a_car_with_a_block_that_does_not_match_its_cid_is_refused(
    embedded: EmbeddedStore, tmp_path: Path
) -> None:
    cid = embedded.put(b"genuine")
    out = io.BytesIO()
    embedded.export_car(out, [cid])
    forged = out.getvalue().replace(b"genuine", b"forgery")
    other = EmbeddedStore(tmp_path / "other")
    with pytest.raises(ContentIntegrityError):
        other.import_car(io.BytesIO(forged))
    assert not other.has(cid)


@pytest.mark.parametrize(
    ("car", "reason"),
    [
        (b"", "length prefix"),
        (b"\x05abc", "header truncated"),
        (b"\x02\xa0\x00", "version None is not 1"),
        (encode_header([]) + b"\x10" + b"\x01\x55", "section truncated"),
        (b"\x04\xa1\x61x\x01", "unknown key"),
    ],
)
def test_malformed_car_files_are_refused(car: bytes, reason: str) -> None:
    with pytest.raises(CarFormatError, match=reason):
        list(CarReader(io.BytesIO(car)))


# --- configuration ---------------------------------------------------------------------------


@pytest.fixture
def store_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No content-store variable of the caller's shell leaks into these tests."""
    for name in ("KIZUNA_STORE", "KIZUNA_STORE_PATH", "KIZUNA_IPFS_API", "KIZUNA_IPFS_TIMEOUT",
                 "KIZUNA_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_configuration_defaults_to_the_embedded_store(
    tmp_path: Path, store_env: pytest.MonkeyPatch
) -> None:
    # The one configuration path: Settings reads the variables, store_config() names the store.
    store_env.setenv("KIZUNA_STORE_PATH", str(tmp_path / "st"))
    config = Settings.load(environment="development").store_config()
    assert config.kind == "embedded"
    store = open_store(config)
    assert isinstance(store, EmbeddedStore)
    assert store.root == tmp_path / "st"


def test_configuration_selects_an_ipfs_node(store_env: pytest.MonkeyPatch) -> None:
    store_env.setenv("KIZUNA_STORE", "ipfs")
    store_env.setenv("KIZUNA_IPFS_API", "http://127.0.0.1:5001/")
    store_env.setenv("KIZUNA_IPFS_TIMEOUT", "5")
    config = Settings.load(environment="development").store_config()
    assert config.timeout_s == 5
    store = open_store(config)
    assert isinstance(store, IpfsStore)
    assert store.api_url == "http://127.0.0.1:5001"
    store.close()


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"KIZUNA_STORE": "s3"}, "store"),
        ({"KIZUNA_IPFS_API": "127.0.0.1:5001"}, "ipfs_api"),
        ({"KIZUNA_IPFS_TIMEOUT": "soon"}, "ipfs_timeout"),
        ({"KIZUNA_IPFS_TIMEOUT": "-1"}, "ipfs_timeout"),
    ],
)
def test_bad_configuration_names_the_variable(
    env: dict[str, str], field: str, store_env: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        store_env.setenv(name, value)
    with pytest.raises(ConfigError, match=f"configuration {field}:"):
        Settings.load(environment="development")


# --- gc --------------------------------------------------------------------------------------


def test_gc_keeps_what_pins_reach_and_removes_the_rest(embedded: EmbeddedStore) -> None:
    base = pseudo_random_bytes(3 * CHUNK, seed=51)
    kept = embedded.put(base + b"kept tail")
    dropped = embedded.put(base + b"dropped tail", pin=False)  # shares three leaves with kept
    loose = embedded.put(b"never pinned", pin=False)
    before = len(_files(embedded.root / "blocks"))
    result = embedded.gc()
    assert result.blocks_removed == 3  # dropped's root and tail leaf, the loose leaf
    assert result.blocks_kept == 5  # kept's root, three shared leaves, its tail leaf
    assert len(_files(embedded.root / "blocks")) == before - 3
    assert embedded.get(kept).read() == base + b"kept tail"
    assert not embedded.has(dropped) and not embedded.has(loose)
    assert result.bytes_freed > len(b"dropped tail")


def test_unpin_then_gc_deletes_the_content(embedded: EmbeddedStore) -> None:
    cid = embedded.put(b"to be forgotten")
    embedded.gc()
    assert embedded.has(cid)
    embedded.unpin(cid)
    embedded.gc()
    assert not embedded.has(cid)
    with pytest.raises(ContentNotFound):
        embedded.get(cid)


def test_gc_refuses_to_guess_when_a_pinned_dag_is_damaged(embedded: EmbeddedStore) -> None:
    cid = embedded.put(pseudo_random_bytes(2 * CHUNK, seed=52))
    embedded.put(b"garbage", pin=False)
    (embedded.root / "blocks" / cid[-3:-1] / cid).write_bytes(b"\xff\xff not dag-pb")
    with pytest.raises(ContentIntegrityError, match="nothing deleted"):
        embedded.gc()
    assert embedded.has(compute_cid(b"garbage").text())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_reading_arbitrary_bytes_as_a_car_fails_only_with_storage_errors(junk: bytes) -> None:
    try:
        reader = CarReader(io.BytesIO(junk))
        list(reader)
    except StorageError:
        pass
