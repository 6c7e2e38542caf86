"""The same story on a real anvil node (HTTP JSON-RPC: the index's raw ``eth_getLogs`` path,
real block times), its records registered alone and in a batch: every verification passes,
the log from the index equals the log rebuilt from the node's logs, and a read recorded after
the revoke is caught."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from audit_story import build_story, scope
from sqlalchemy import insert

from kizuna.chain.localnode import LocalNode
from kizuna.db import schema
from kizuna.receipts.request import ReadRequest, receipt_leaf
from kizuna.services import audit, fhir_export
from kizuna.storage.fhir.validate import validate

pytestmark = pytest.mark.anvil


@pytest.mark.parametrize("registered", ["alone", "batch"])
def test_story_on_anvil(tmp_path: Path, registered: str) -> None:
    # Its own node, not the session's: other suites move the shared node's clock ahead
    # (evm_increaseTime), and a read decided at a block "later" than the wall-clock time it
    # was served at is exactly what the audit flags (access.head_block).
    with LocalNode(log_path=tmp_path / "anvil.log") as node:
        _story_on(node, tmp_path, registered)


def _story_on(anvil: LocalNode, tmp_path: Path, registered: str) -> None:
    story = build_story(tmp_path, rpc_url=anvil.rpc_url, registered=registered)
    try:
        report = audit.audit(story.chain, story.db, story.store, index=story.index)
        assert report.ok, (report.receipts.failures, report.access.failures,
                           report.content.failures)
        assert report.receipts.passed == 4 and report.access.passed == 4
        assert report.content.passed == 2
        # the batch's event decoded from the node's raw logs, its records from the manifest
        assert report.content.counts["batch_records"] == (2 if registered == "batch" else 0)
        from_logs = audit.audit(story.chain, story.db, story.store, from_chain=True)
        assert from_logs.ok and from_logs.content.passed == 2
        assert (audit.ChainHistory.from_chain(story.chain).entries()
                == audit.ChainHistory.from_index(story.chain, story.index).entries())
        validate(fhir_export.export_bundle(story.chain, story.db, store=story.store,
                                           index=story.index))

        db = story.clone_db(tmp_path / "after-revoke.db")
        request = ReadRequest.new(provider=story.provider.address,
                                  patient=story.patient.address, record_id=story.records["B"])
        signature = request.sign(story.provider.key, story.ctx.domain)
        served = int(time.time())
        with db.write() as conn:
            conn.execute(insert(schema.receipts).values(
                request_id=request.request_id, provider=request.provider,
                patient=request.patient, record_id=bytes(request.record_id),
                scope_id=scope("B"), request_json=request.to_json_string(),
                signature=signature,
                leaf=receipt_leaf(request, signature, served_at=served,
                                  head_block=story.revoke_block),
                served_at=served, head_block=story.revoke_block))
        history = audit.service_history(story.chain, story.db, story.store, from_chain=True)
        access = audit.verify_access(history, audit.load_receipts(db))
        assert [f.check for f in access.about(request.request_id)] == ["access.no_grant"]
    finally:
        story.index.close()
        story.db.dispose()


def test_node_gone_is_node_unreachable(tmp_path: Path) -> None:
    """An auditor whose node stops gets ``NodeUnreachable`` (the API's 503), not a stack of
    HTTP errors — from the log, the block times and the verifications alike."""
    from kizuna.errors import NodeUnreachable

    node = LocalNode(log_path=tmp_path / "anvil.log").start()
    try:
        story = build_story(tmp_path, rpc_url=node.rpc_url)
        history = audit.ChainHistory.from_chain(story.chain)
    finally:
        node.stop()
    try:
        with pytest.raises(NodeUnreachable):
            audit.full_log(story.chain, from_chain=True)
        with pytest.raises(NodeUnreachable):
            history.block_time(history.head_block - 1)  # not asked before: goes to the node
        with pytest.raises(NodeUnreachable):
            audit.audit(story.chain, story.db, story.store, index=story.index)
    finally:
        story.index.close()
        story.db.dispose()
