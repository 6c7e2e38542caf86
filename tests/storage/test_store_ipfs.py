"""Against a real IPFS daemon (js-ipfs 0.66.1, started by the ``ipfs_node`` fixture): the
embedded store's CIDs equal the node's, a CAR export moves content into the node unchanged,
the client's round trips, and each failure of a node is a clear error."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pytest
from store_data import CHUNK, MB, TWO_LEVEL, closed_port_url, pseudo_random, pseudo_random_bytes

from kizuna.errors import (
    ContentNotFound,
    InvalidCid,
    StorageError,
    StoreProtocolError,
    StoreUnavailable,
)
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.ipfs import CidMismatchError, IpfsStore
from kizuna.storage.localipfs import LocalIpfsNode
from kizuna.storage.store import ContentStore
from kizuna.storage.unixfs import ContentIntegrityError, compute_cid

pytestmark = pytest.mark.ipfs


@pytest.fixture
def raw_node(ipfs_node: LocalIpfsNode) -> IpfsStore:
    """The node's own answers, unchecked: the CID-equality tests compare them themselves."""
    return IpfsStore(ipfs_node.api_url, find_timeout_s=1.0, verify=False)


@pytest.mark.parametrize(
    ("size", "seed"),
    [
        (0, 0),
        (1, 1),
        (CHUNK, 2),  # exactly one block
        (CHUNK + 1, 3),  # one block + 1: a dag-pb root over two leaves
        (TWO_LEVEL, 4),  # 175 chunks: a two-level tree
        (100 * MB, 5),
    ],
    ids=["0B", "1B", "one-block", "one-block+1", "two-level", "100MB"],
)
def test_embedded_cid_equals_the_nodes(
    embedded: EmbeddedStore, raw_node: IpfsStore, size: int, seed: int
) -> None:
    ours = embedded.put(pseudo_random(size, seed=seed))
    theirs = raw_node.put(pseudo_random(size, seed=seed))
    assert ours == theirs
    assert ours.startswith("bafk" if size <= CHUNK else "bafy")


def test_car_export_imports_into_the_node_under_the_same_cids(
    embedded: EmbeddedStore, ipfs_store: IpfsStore
) -> None:
    data = pseudo_random_bytes(3 * CHUNK + 11, seed=42)
    small = b"a record only the embedded store has, " + str(time.time_ns()).encode()
    big_cid = embedded.put(data)
    small_cid = embedded.put(small)
    assert not ipfs_store.has(small_cid)  # the node has never seen it
    car = io.BytesIO()
    embedded.export_car(car, [big_cid, small_cid])
    car.seek(0)
    assert ipfs_store.import_car(car) == [big_cid, small_cid]
    assert ipfs_store.get(big_cid).read() == data
    assert ipfs_store.get(small_cid).read() == small


def test_round_trip_through_the_node(ipfs_store: IpfsStore) -> None:
    assert isinstance(ipfs_store, ContentStore)
    data = pseudo_random_bytes(2 * CHUNK + 333, seed=8)
    cid = ipfs_store.put(io.BytesIO(data))
    assert cid == compute_cid(data).text()
    assert ipfs_store.has(cid)
    with ipfs_store.get(cid) as stream:
        pieces = list(stream)
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= CHUNK


def test_round_trip_node_to_embedded_and_back(
    embedded: EmbeddedStore, ipfs_store: IpfsStore
) -> None:
    data = pseudo_random_bytes(CHUNK + 7, seed=12)
    cid = ipfs_store.put(data)
    assert embedded.put(ipfs_store.get(cid)) == cid  # a stream goes straight in
    assert ipfs_store.put(embedded.get(cid)) == cid
    assert embedded.get(cid).read() == data


def test_pin_and_unpin(ipfs_store: IpfsStore) -> None:
    cid = ipfs_store.put(b"pin me " + str(time.time_ns()).encode(), pin=False)
    ipfs_store.pin(cid)
    ipfs_store.unpin(cid)
    ipfs_store.unpin(cid)  # not pinned any more: a no-op, the content is still there
    assert ipfs_store.has(cid)


def test_pin_many_checks_every_root_before_pinning_any(
        ipfs_store: IpfsStore, ipfs_node: LocalIpfsNode) -> None:
    salt = str(time.time_ns()).encode()
    cids = [ipfs_store.put(b"pin many " + salt + bytes([i]), pin=False) for i in range(3)]
    absent = compute_cid(b"nobody ever added this " + salt).text()

    def pinned(cid: str) -> bool:
        listed = httpx.post(f"{ipfs_node.api_url}/api/v0/pin/ls",
                            params={"arg": cid, "type": "recursive", "cid-base": "base32"})
        return listed.status_code == 200 and cid in listed.text

    with pytest.raises(ContentNotFound):
        ipfs_store.pin_many([cids[0], absent])
    assert not pinned(cids[0])
    ipfs_store.pin_many([*cids, cids[0]])
    assert all(pinned(cid) for cid in cids)


def test_missing_content_is_content_not_found(ipfs_store: IpfsStore) -> None:
    absent = compute_cid(b"nobody ever added this " + str(time.time_ns()).encode()).text()
    started = time.monotonic()
    assert not ipfs_store.has(absent)
    with pytest.raises(ContentNotFound) as caught:
        ipfs_store.get(absent)
    assert caught.value.cid == absent
    with pytest.raises(ContentNotFound):
        ipfs_store.pin(absent)
    with pytest.raises(ContentNotFound):
        ipfs_store.unpin(absent)
    assert time.monotonic() - started < 20  # never the node's endless wait


@pytest.mark.parametrize("bad", ["", "QmNotReally", "bafy!!", "zzzz"])
def test_bad_cids_never_reach_the_node(ipfs_store: IpfsStore, bad: str) -> None:
    for call in (ipfs_store.get, ipfs_store.has, ipfs_store.pin, ipfs_store.unpin):
        with pytest.raises(InvalidCid):
            call(bad)


def test_version(ipfs_store: IpfsStore) -> None:
    version = ipfs_store.version()
    assert version.version == "0.18.1"  # js-ipfs 0.66.1 reports its core's version
    assert version.details["Version"] == version.version


def test_an_unreachable_node_is_store_unavailable() -> None:
    store = IpfsStore(closed_port_url(), timeout_s=2.0)
    for call in (
        store.version,
        lambda: store.put(b"x"),
        lambda: store.get(compute_cid(b"x").text()),
        lambda: store.has(compute_cid(b"x").text()),
    ):
        with pytest.raises(StoreUnavailable, match="unreachable"):
            call()


def test_a_node_answering_garbage_is_a_protocol_error(garbage_server: str) -> None:
    store = IpfsStore(garbage_server, timeout_s=5.0)
    with pytest.raises(StoreProtocolError, match="not JSON"):
        store.version()
    with pytest.raises(StoreProtocolError, match="not JSON"):
        store.put(b"some bytes")
    with pytest.raises(StoreProtocolError):
        store.get(compute_cid(b"x").text())


def test_a_server_not_speaking_http_is_a_protocol_error(not_http_server: str) -> None:
    store = IpfsStore(not_http_server, timeout_s=5.0)
    with pytest.raises(StoreProtocolError, match="does not speak the IPFS HTTP API"):
        store.version()


def test_a_node_naming_content_wrongly_is_caught(lying_server: str) -> None:
    store = IpfsStore(lying_server, timeout_s=5.0)
    with pytest.raises(CidMismatchError, match="other settings"):
        store.put(b"the node will claim this is the empty file")


def test_a_node_serving_wrong_bytes_is_caught(lying_server: str) -> None:
    store = IpfsStore(lying_server, timeout_s=5.0)
    wanted = compute_cid(b"the real record").text()
    with pytest.raises(ContentIntegrityError, match="tampered"):
        store.get(wanted).read()


def test_errors_of_the_node_keep_its_message(ipfs_store: IpfsStore) -> None:
    car = io.BytesIO(b"\x05this is not a CAR file at all")
    with pytest.raises(StorageError) as caught:
        ipfs_store.import_car(car)
    assert not isinstance(caught.value, ContentNotFound)
    assert "dag/import" in str(caught.value)


def test_the_fixture_node_is_stopped_by_stop(tmp_path: Path) -> None:
    node = LocalIpfsNode(log_path=tmp_path / "n.log")
    with node:
        url = node.api_url
        assert IpfsStore(url).version().version
    assert not node.running
    with pytest.raises(StoreUnavailable):
        IpfsStore(url, timeout_s=2.0).version()
