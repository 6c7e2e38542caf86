"""docs/audit.md's recipes, run as written: the fenced blocks marked ``<!-- recipe: NAME -->``
are taken from the page and run with the real ``cast`` (``scripts/cast``, npm
@foundry-rs/cast) and ethers against anvil, on a story whose grant is one ``grantBatch`` of two
scopes (an ``AccessGrantedBatch`` event) followed by reads. What they find must equal what
``kizuna audit log`` says (``audit.full_log``, the function the command calls), and every read
must have a grant of its scope in what they found."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audit_story import Story, build_story

from kizuna.chain.localnode import LocalNode
from kizuna.services import audit

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "audit.md"
CAST = ROOT / "scripts" / "cast"


def recipe(name: str) -> str:
    """The fenced block right after ``<!-- recipe: name -->`` in docs/audit.md."""
    found = re.search(rf"<!-- recipe: {re.escape(name)} -->\n```\w*\n(.*?)\n```",
                      DOC.read_text(encoding="utf-8"), re.S)
    assert found, f"docs/audit.md has no recipe {name!r}"
    return found.group(1)


def _tools() -> str:
    node = ROOT / ".venv" / "bin" / "node"
    if not node.exists() or not (ROOT / "node_modules" / "ethers").exists():
        pytest.skip("Node or ethers is not installed (scripts/bootstrap.sh)")
    if not list((ROOT / "node_modules" / "@foundry-rs").glob("cast-*/bin/cast")):
        pytest.skip("cast is not installed (npm @foundry-rs/cast: scripts/bootstrap.sh)")
    return str(node)


@pytest.fixture(scope="module")
def batch_story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Story, LocalNode,
                                                                            dict[str, str]]]:
    _tools()
    tmp = tmp_path_factory.mktemp("recipes")
    # Its own node: the story's reads are decided at heads whose block times must not be moved
    # ahead by other suites' evm_increaseTime on a shared node.
    with LocalNode(log_path=tmp / "anvil.log") as node:
        story = build_story(tmp, rpc_url=node.rpc_url, batch=True)
        try:
            home = tmp / "home"
            story.chain.deployment.save(home / "deployments")  # where `kizuna up` writes it
            env = {**os.environ, "KIZUNA_HOME": str(home), "RPC": node.rpc_url,
                   "CHAIN_ID": str(story.chain.chain_id), "PATIENT": story.patient.address}
            yield story, node, env
        finally:
            story.index.close()
            story.db.dispose()


def _log(story: Story, *, patient: bool = True) -> list[audit.AuditEntry]:
    """``kizuna audit log [--patient P] --local``'s entries (anchors name no patient)."""
    return audit.full_log(story.chain, from_chain=True, database=story.db,
                          patient=story.patient.address if patient else None)


def _count(log: list[audit.AuditEntry], kind: audit.EntryKind) -> int:
    return sum(1 for e in log if e.kind is kind)


def _json_arrays(text: str) -> list[list[dict[str, Any]]]:
    """The JSON arrays ``cast logs --json`` printed, one per command, in order."""
    decoder, arrays, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        while text[at].isspace():
            at += 1
        value, at = decoder.raw_decode(text, at)
        arrays.append(value)
    return arrays


def test_cast_recipe_counts_equal_the_audit_log(
        batch_story: tuple[Story, LocalNode, dict[str, str]]) -> None:
    story, _, env = batch_story
    script = recipe("cast-events").replace("PATIENT=0x...", "", 1)  # the test's patient: env
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    granted, granted_batch, revoked, all_revoked, anchored = _json_arrays(done.stdout)

    log = _log(story)
    assert len(granted) == 0 and len(granted_batch) == 1  # the story's one grantBatch
    assert len(granted) + len(granted_batch) == _count(log, audit.EntryKind.ACCESS_GRANTED)
    assert len(revoked) == _count(log, audit.EntryKind.ACCESS_REVOKED) == 1
    assert len(all_revoked) == _count(log, audit.EntryKind.ALL_ACCESS_REVOKED) == 0
    everyone = _log(story, patient=False)
    assert len(anchored) == _count(everyone, audit.EntryKind.RECEIPT_ROOT_ANCHORED) == 1
    grant_txs = {g["transactionHash"] for g in granted + granted_batch}
    assert grant_txs == {"0x" + e.tx_hash.hex() for e in log
                         if e.kind is audit.EntryKind.ACCESS_GRANTED}


def test_ethers_recipe_finds_the_grant_of_every_read(
        batch_story: tuple[Story, LocalNode, dict[str, str]]) -> None:
    story, _, env = batch_story
    node = _tools()
    done = subprocess.run([node, "--input-type=module"], input=recipe("ethers-grants"), cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    grants = [x for x in lines if x["event"] != "ReceiptRootAnchored"]
    anchors = [x for x in lines if x["event"] == "ReceiptRootAnchored"]

    log = _log(story)
    logged = [e for e in log if e.kind is audit.EntryKind.ACCESS_GRANTED]
    assert [g["event"] for g in grants] == ["AccessGrantedBatch"]
    assert [(g["block"], g["tx"], g["provider"], g["scopeIds"], int(g["expiresAt"]), g["time"])
            for g in grants] == [
        (e.block_number, "0x" + e.tx_hash.hex(), e.provider,
         ["0x" + s.hex() for s in e.scope_ids], e.expires_at, e.time) for e in logged]
    reads = [e for e in log if e.kind is audit.EntryKind.READ]
    assert len(reads) == 4
    assert sum(a["count"] for a in anchors) == len(reads)
    everyone = _log(story, patient=False)
    assert len(anchors) == _count(everyone, audit.EntryKind.RECEIPT_ROOT_ANCHORED) == 1
    # every read was of a scope the recipe saw granted to its reader before it was served
    for read in reads:
        assert any(g["provider"] == read.provider and "0x" + read.scope_ids[0].hex()
                   in g["scopeIds"] and g["block"] <= read.block_number  # its head block
                   for g in grants), read


def test_cast_and_forge_failures_are_nonzero_exits() -> None:
    _tools()
    # A node that is not there: cast fails, and scripts/cast passes its status on (the npm
    # package's node_modules/.bin/cast shim exits 0 here).
    done = subprocess.run([str(CAST), "block-number", "--rpc-url", "http://127.0.0.1:9"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "error" in done.stderr.lower()
    # scripts/forge (scripts/test's Solidity step) is the same script: a failing forge fails.
    forge = subprocess.run([str(ROOT / "scripts" / "forge"), "--no-such-flag"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert forge.returncode != 0, forge.stderr
