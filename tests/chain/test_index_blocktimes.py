"""BlockTimes (kizuna/chain/index/blocktimes.py) on a real anvil: a block's time is asked once
per hash, the cache keeps at most ``max_size`` blocks (least recently used out), and a hash it
does not hold is asked again, never answered from another block of the same number."""

from __future__ import annotations

import pytest
from web3 import Web3

from kizuna.chain.connection import web3_for
from kizuna.chain.index.blocktimes import BlockTimes
from kizuna.chain.localnode import LocalNode
from kizuna.chain.models import BlockRef

pytestmark = pytest.mark.anvil


def _fetcher(w3: Web3, asked: list[int]) -> BlockTimes:
    def fetch(number: int) -> BlockRef:
        asked.append(number)
        block = w3.eth.get_block(number)
        return BlockRef(number=int(block["number"]), hash=bytes(block["hash"]),
                        timestamp=int(block["timestamp"]))
    return BlockTimes(fetch, max_size=2)


def test_kept_by_hash_and_bounded(anvil: LocalNode) -> None:
    w3 = web3_for(anvil.rpc_url)
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    blocks = [w3.eth.get_block(n) for n in range(3)]
    asked: list[int] = []
    times = _fetcher(w3, asked)

    for b in blocks[:2]:
        assert times.time(b["number"], bytes(b["hash"])) == b["timestamp"]
        assert times.time(b["number"], bytes(b["hash"])) == b["timestamp"]
    assert asked == [0, 1] and times.fetched == 2

    times.time(1, bytes(blocks[1]["hash"]))  # block 1 used last: block 0 is the one to go
    times.time(2, bytes(blocks[2]["hash"]))
    assert len(times) == 2
    times.time(1, bytes(blocks[1]["hash"]))
    assert asked == [0, 1, 2]
    times.time(0, bytes(blocks[0]["hash"]))
    assert asked == [0, 1, 2, 0]

    # a hash it never saw (as after a reorg) is asked of the node, not served from block 0's
    times.time(0, b"\x01" * 32)
    assert asked == [0, 1, 2, 0, 0]
    # without a hash, the node is asked every time (nothing is kept by number)
    times.time(0)
    assert asked[-1] == 0 and len(asked) == 6
