"""The UnixFS importer's structure (the equality with a real node is in test_store_ipfs.py):
chunk boundaries, tree shape, node encoding, and independence from how the bytes arrive."""

from __future__ import annotations

import hashlib
import io

from hypothesis import given, settings
from hypothesis import strategies as st
from store_data import CHUNK, pseudo_random_bytes

from kizuna.storage.cid import DAG_PB, RAW, ContentId
from kizuna.storage.unixfs import (
    MAX_LINKS,
    UNIXFS_FILE,
    Importer,
    compute_cid,
    decode_node,
    decode_unixfs,
    import_bytes,
)


def _blocks(data: bytes) -> tuple[ContentId, dict[ContentId, bytes], list[ContentId]]:
    blocks: dict[ContentId, bytes] = {}
    order: list[ContentId] = []

    def sink(cid: ContentId, block: memoryview) -> None:
        blocks[cid] = bytes(block)
        order.append(cid)

    importer = Importer(sink)
    importer.write(data)
    return importer.finish().cid, blocks, order


def test_empty_file_is_one_empty_raw_leaf() -> None:
    root, blocks, _ = _blocks(b"")
    assert root == ContentId.for_block(RAW, b"")
    assert blocks == {root: b""}


def test_one_chunk_file_is_its_raw_leaf() -> None:
    data = pseudo_random_bytes(CHUNK)
    root, blocks, _ = _blocks(data)
    assert root.codec == RAW
    assert root.digest == hashlib.sha256(data).digest()
    assert len(blocks) == 1


def test_one_chunk_plus_one_byte_is_a_dag_pb_node_over_two_leaves() -> None:
    data = pseudo_random_bytes(CHUNK + 1)
    root, blocks, order = _blocks(data)
    assert root.codec == DAG_PB and order[-1] == root
    node = decode_node(blocks[root])
    assert [link.cid for link in node.links] == [
        ContentId.for_block(RAW, data[:CHUNK]),
        ContentId.for_block(RAW, data[CHUNK:]),
    ]
    assert [link.tsize for link in node.links] == [CHUNK, 1]
    assert all(link.name == "" for link in node.links)
    assert node.data is not None
    unixfs = decode_unixfs(node.data)
    assert unixfs.type == UNIXFS_FILE
    assert unixfs.filesize == CHUNK + 1
    assert unixfs.blocksizes == (CHUNK, 1)


def _top_level_fields(block: bytes) -> list[int]:
    """Field numbers of a protobuf message, in order (length-delimited fields only)."""
    numbers = []
    pos = 0
    while pos < len(block):
        key = block[pos]
        pos += 1
        assert key & 7 == 2
        length, shift = 0, 0
        while True:
            byte = block[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        numbers.append(key >> 3)
        pos += length
    return numbers


def test_links_are_encoded_before_data_with_an_explicit_empty_name() -> None:
    """dag-pb's canonical form: PBNode field 2 (Links) first, then field 1 (Data); each
    PBLink is Hash (1), Name (2, written even when empty), Tsize (3)."""
    _, blocks, order = _blocks(b"x" * (2 * CHUNK + 5))
    root_block = blocks[order[-1]]
    assert _top_level_fields(root_block) == [2, 2, 2, 1]
    link = root_block[2 : 2 + root_block[1]]
    assert link[0] == 0x0A and link[1] == 36  # Hash: a 36-byte CIDv1
    assert link[38:40] == b"\x12\x00"  # Name: the empty string
    assert link[40] == 0x18  # Tsize, a varint


def test_174_chunks_fit_one_node_175_need_two_levels() -> None:
    importer = Importer()
    piece = b"\x01" * CHUNK
    for _ in range(MAX_LINKS):
        importer.write(piece)
    one_level = importer.finish()
    assert one_level.blocks == MAX_LINKS + 1  # the leaves + one root

    shapes: list[tuple[int, int]] = []

    def sink(cid: ContentId, block: memoryview) -> None:
        if cid.codec == DAG_PB:
            shapes.append(
                (
                    len(decode_node(block).links),
                    decode_unixfs(decode_node(block).data or b"").filesize or 0,
                )
            )

    importer = Importer(sink)
    for _ in range(MAX_LINKS):
        importer.write(piece)
    importer.write(b"\x02")
    two_levels = importer.finish()
    assert two_levels.size == MAX_LINKS * CHUNK + 1
    # One full parent (174 leaves), one parent over the last single leaf, then the root.
    assert shapes == [(MAX_LINKS, MAX_LINKS * CHUNK), (1, 1), (2, MAX_LINKS * CHUNK + 1)]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=CHUNK + 3), min_size=1, max_size=8))
def test_cid_does_not_depend_on_how_the_bytes_are_split(cuts: list[int]) -> None:
    data = pseudo_random_bytes(3 * CHUNK + 17, seed=9)
    expected = compute_cid(data)
    pieces: list[bytes] = []
    pos = 0
    for cut in cuts:
        pieces.append(data[pos : pos + cut])
        pos += cut
    pieces.append(data[pos:])
    assert import_bytes(iter(pieces)).cid == expected


def test_file_objects_iterators_and_bytes_agree() -> None:
    data = pseudo_random_bytes(2 * CHUNK + 99, seed=3)
    via_bytes = compute_cid(data)
    assert compute_cid(io.BytesIO(data)) == via_bytes
    assert compute_cid(iter([data[:5], data[5:]])) == via_bytes
    assert import_bytes(io.BufferedReader(io.BytesIO(data))).size == len(data)  # type: ignore[arg-type]


def test_different_bytes_give_different_cids() -> None:
    data = bytearray(pseudo_random_bytes(CHUNK + 10))
    before = compute_cid(bytes(data))
    data[CHUNK + 3] ^= 1
    assert compute_cid(bytes(data)) != before


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoding_arbitrary_bytes_fails_only_with_value_error(junk: bytes) -> None:
    try:
        node = decode_node(junk)
        if node.data is not None:
            decode_unixfs(node.data)
    except ValueError:
        pass
