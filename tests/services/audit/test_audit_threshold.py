"""The threshold-read audit (kizuna.services.audit.threshold) on the real audit story: each
proxy node's receipts judged by check 2 on their own, grouped by signed request."""

from __future__ import annotations

import time
from pathlib import Path

from audit_story import Story, scope
from sqlalchemy import insert

from kizuna.db import schema
from kizuna.receipts.request import ReadRequest, receipt_leaf
from kizuna.services import audit
from kizuna.services.audit.threshold import verify_threshold


def _history(story: Story) -> audit.ChainHistory:
    return audit.service_history(story.chain, story.db, story.store, index=story.index)


def test_reads_served_by_every_node_with_a_live_grant_pass(story: Story) -> None:
    rows = audit.load_receipts(story.db)
    report = verify_threshold(_history(story), {"A": rows, "B": rows, "C": rows}, threshold=2)
    assert report.ok, report.failures
    assert report.checked == report.passed == len(rows) == 4


def test_a_read_served_by_one_node_is_flagged(story: Story) -> None:
    rows = audit.load_receipts(story.db)
    lone, others = rows[0], rows[1:]
    report = verify_threshold(_history(story), {"A": rows, "B": others, "C": others},
                              threshold=2)
    assert report.failed_checks() == {"threshold.alone", "threshold.too_few"}
    assert {f.check for f in report.about(lone.request_id)} == {"threshold.alone",
                                                                "threshold.too_few"}
    assert "node A served it alone" in report.about(lone.request_id)[0].reason
    assert report.passed == 3 and report.counts["served_alone"] == 1
    # With threshold 1 (the embedded 1-of-1), serving alone is still named, but enough.
    single = verify_threshold(_history(story), {"A": rows, "B": others}, threshold=1)
    assert single.failed_checks() == {"threshold.alone"}


def test_a_node_that_served_after_the_revoke_is_flagged(story: Story, tmp_path: Path) -> None:
    """Node C's database kept the revoked grant's fragment and served alone: its receipt is at
    the revoke block, of record B."""
    db = story.clone_db(tmp_path / "node-c.db")
    request = ReadRequest.new(provider=story.provider.address, patient=story.patient.address,
                              record_id=story.records["B"])
    signature = request.sign(story.provider.key, story.ctx.domain)
    served = int(time.time())
    with db.write() as conn:
        conn.execute(insert(schema.receipts).values(
            request_id=request.request_id, provider=request.provider, patient=request.patient,
            record_id=bytes(request.record_id), scope_id=scope("B"),
            request_json=request.to_json_string(), signature=signature,
            leaf=receipt_leaf(request, signature, served_at=served,
                              head_block=story.revoke_block),
            served_at=served, head_block=story.revoke_block))
    honest = audit.load_receipts(story.db)
    report = verify_threshold(_history(story), {"A": honest, "B": honest,
                                                "C": audit.load_receipts(db)}, threshold=2)
    found = {f.check: f.reason for f in report.about(request.request_id)}
    assert set(found) == {"threshold.dead_grant", "threshold.alone", "threshold.too_few"}
    assert found["threshold.dead_grant"].startswith("node C served it without a live grant")
    assert f"revoked in block {story.revoke_block}" in found["threshold.dead_grant"]
    assert report.passed == 4  # the honest reads, served by all three


def test_a_late_node_among_live_ones_is_named_but_the_read_had_its_threshold(
        story: Story) -> None:
    history = _history(story)
    rows = audit.load_receipts(story.db)
    honest = next(r for r in rows if r.scope_id == scope("B"))
    late = audit.ReceiptRow(**{**{f: getattr(honest, f) for f in honest.__slots__},
                               "served_at": history.block_time(story.revoke_block) + 600,
                               "issued_at": history.block_time(story.revoke_block) + 600})
    report = verify_threshold(history, {"A": [honest], "B": [honest], "C": [late]},
                              threshold=2)
    assert report.failed_checks() == {"threshold.dead_grant"}
    assert "node C" in report.failures[0].reason and report.passed == 0
