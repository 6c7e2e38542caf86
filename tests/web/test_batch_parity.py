"""The page's record batches (web/src/core/batch.ts) against Python's (kizuna.batch),
byte for byte: the same leaves give the same root, manifest bytes and proofs, and a hostile
manifest is refused by both with the same field and reason.

``web/test/batch_cli.ts`` (Node 24, type stripping) answers for the page's code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kizuna.batch import (
    MANIFEST_MAGIC,
    MAX_BATCH_RECORDS,
    BatchLeaf,
    BatchManifest,
    pack_proof,
)
from kizuna.errors import InputError
from kizuna.types import Commitment, RecordId, ScopeId

pytestmark = pytest.mark.node

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "web" / "test" / "batch_cli.ts"
SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 500]


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


def _leaf(scope: bytes | None = None) -> BatchLeaf:
    return BatchLeaf(RecordId(os.urandom(32)), ScopeId(scope or os.urandom(32)),
                     Commitment(os.urandom(32)))


def _wire(leaf: BatchLeaf) -> dict[str, str]:
    return {"record_id": _hex(leaf.record_id), "scope_id": _hex(leaf.scope_id),
            "commitment": _hex(leaf.commitment)}


def _refusal(error: InputError) -> dict[str, Any]:
    return {"error": {"field": error.field, "reason": error.reason}}


def test_roots_manifests_and_proofs_are_pythons() -> None:
    scope = os.urandom(32)  # records of one scope, as an import makes them
    batches = [[_leaf(scope if i % 3 else None) for i in range(n)] for n in SIZES]
    answer = _node({"batches": [[_wire(leaf) for leaf in b] for b in batches], "manifests": []})
    assert len(answer["batches"]) == len(batches)
    for leaves, got in zip(batches, answer["batches"], strict=True):
        manifest = BatchManifest.of(leaves)
        assert got["root"] == _hex(manifest.root), len(leaves)
        assert got["count"] == manifest.count
        assert got["manifest"] == _hex(manifest.encode())
        assert got["proofs"] == [_hex(pack_proof(manifest.proof(i))) for i in range(len(leaves))]
        assert got["verified"] == [True] * len(leaves)
        assert got["indexes"] == list(range(len(leaves)))


def test_bad_batches_are_refused_as_python_refuses_them() -> None:
    a, b = _leaf(), _leaf()
    cases: list[list[dict[str, str]]] = [
        [],  # empty
        [_wire(a), _wire(b), _wire(a)],  # an id twice
        [_wire(a) | {"record_id": _hex(bytes(32))}],  # zero id
        [_wire(a) | {"scope_id": "0x" + "ab" * 31}],  # a short word
    ]
    answer = _node({"batches": cases, "manifests": []})
    expected: list[dict[str, Any]] = []
    for case in cases:
        try:
            BatchManifest.of(BatchLeaf(RecordId(bytes.fromhex(w["record_id"][2:])),
                                       ScopeId(bytes.fromhex(w["scope_id"][2:])),
                                       Commitment(bytes.fromhex(w["commitment"][2:])))
                             for w in case)
        except InputError as error:
            expected.append(_refusal(error))
        else:
            pytest.fail(f"Python accepted a bad batch: {case}")
    assert answer["batches"] == expected


def test_hostile_manifests_are_refused_as_python_refuses_them() -> None:
    good = BatchManifest.of([_leaf() for _ in range(5)])
    data = good.encode()
    header = len(MANIFEST_MAGIC) + 4
    twice = BatchManifest.of([_leaf(), _leaf()]).encode()
    cases: list[dict[str, str]] = [
        {"data": _hex(data)},  # fine
        {"data": _hex(data), "root": _hex(good.root)},  # fine, and its root
        {"data": _hex(data), "root": _hex(os.urandom(32))},  # another batch's root
        {"data": _hex(b"KZBATCH\x02" + data[8:])},  # bad magic
        {"data": _hex(b"KZB")},  # shorter than the magic
        {"data": _hex(MANIFEST_MAGIC + b"\x00\x00")},  # truncated header
        {"data": _hex(MANIFEST_MAGIC + (0).to_bytes(4, "big"))},  # zero records
        {"data": _hex(MANIFEST_MAGIC + (MAX_BATCH_RECORDS + 1).to_bytes(4, "big"))},
        {"data": _hex(MANIFEST_MAGIC + (2**32 - 1).to_bytes(4, "big"))},
        {"data": _hex(data[:-1])},  # a byte short
        {"data": _hex(data + b"\x00")},  # a byte long
        {"data": _hex(MANIFEST_MAGIC + (6).to_bytes(4, "big") + data[header:])},  # count lies
        # The same record twice.
        {"data": _hex(MANIFEST_MAGIC + (3).to_bytes(4, "big") + twice[header:]
                      + twice[header:header + 96])},
        # A zero record id.
        {"data": _hex(MANIFEST_MAGIC + (1).to_bytes(4, "big") + bytes(32) + os.urandom(64))},
    ]
    answer = _node({"batches": [], "manifests": cases})
    expected: list[dict[str, Any]] = []
    for case in cases:
        root = bytes.fromhex(case["root"][2:]) if "root" in case else None
        try:
            decoded = BatchManifest.decode(bytes.fromhex(case["data"][2:]), root=root)
        except InputError as error:
            expected.append(_refusal(error))
        else:
            expected.append({"root": _hex(decoded.root), "count": decoded.count})
    assert answer["manifests"] == expected
    assert [("error" in x) for x in expected] == [False, False] + [True] * (len(cases) - 2)
