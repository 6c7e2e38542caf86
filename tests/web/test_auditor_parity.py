"""The auditor page's Merkle rule and receipt leaves (web/src/core/merkle.ts, receipts.ts)
against Python's (kizuna.merkle, kizuna.receipts.request), byte for byte.

``web/test/auditor_cli.ts`` (Node 24, type stripping) builds trees over leaves made here —
sizes 1 to 33 including odd ones, whose last node is carried up unchanged — and answers each
root, every proof and whether it verifies, and recomputes read receipts' leaves from the stored
request JSON, signature, servedAt and headBlock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kizuna.merkle import MerkleTree, leaf_hash
from kizuna.receipts.request import ReadRequest, receipt_leaf
from kizuna.types import RecordId

pytestmark = pytest.mark.node

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "web" / "test" / "auditor_cli.ts"
SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 33]


def _node(payload: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node", path=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert node, "no node on PATH: `. scripts/bootstrap.sh` puts Node 24 there"
    out = subprocess.run([node, str(CLI)], input=json.dumps(payload), capture_output=True,
                         text=True, cwd=ROOT, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def test_trees_roots_and_proofs_are_pythons() -> None:
    trees = [[leaf_hash(os.urandom(40)) for _ in range(n)] for n in SIZES]
    # A tree whose leaves repeat and sort against their order (the pair rule sorts each pair).
    trees.append([bytes(32), bytes([255] * 32), bytes(32), bytes([1] * 32), bytes([255] * 32)])
    answer = _node({"trees": [[_hex(x) for x in t] for t in trees], "receipts": []})
    assert len(answer["trees"]) == len(trees)
    for leaves, got in zip(trees, answer["trees"], strict=True):
        tree = MerkleTree.build(leaves)
        assert got["root"] == _hex(tree.root), len(leaves)
        assert got["proofs"] == [[_hex(s) for s in tree.proof(i)] for i in range(len(leaves))]
        assert got["verified"] == [True] * len(leaves)


def test_receipt_leaves_are_pythons() -> None:
    receipts: list[dict[str, Any]] = []
    expected: list[str] = []
    for served_at, head_block in [(1_700_000_000, 1), (1_800_000_123, 99_999), (2**40, 2**33)]:
        request = ReadRequest.new(provider="0x" + os.urandom(20).hex(),
                                  patient="0x" + os.urandom(20).hex(),
                                  record_id=RecordId(os.urandom(32)), issued_at=served_at - 3)
        signature = os.urandom(65)
        receipts.append({"request_json": request.to_json_string(), "signature": _hex(signature),
                         "served_at": served_at, "head_block": head_block})
        expected.append(_hex(receipt_leaf(request, signature, served_at=served_at,
                                          head_block=head_block)))
    # One altered field gives another leaf (the page's tamper check rests on this).
    receipts.append(receipts[0] | {"served_at": receipts[0]["served_at"] + 1})
    answer = _node({"trees": [], "receipts": receipts})
    got = [x.get("leaf") for x in answer["leaves"]]
    assert got[:3] == expected
    assert got[3] not in expected
