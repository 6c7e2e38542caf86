"""Threshold reads (docs/proxies.md): each read was served by at least m proxy nodes, each of
which saw a live grant; a node that served alone or without a live grant is named.

Every proxy node writes its own receipts in its own database; the auditor loads each node's
``receipts`` table (:func:`~kizuna.services.audit.stored.load_receipts`) and groups them by
the signed request's id: the provider signs one request and sends it to every node, so the
nodes that served a read hold receipts with the same ``request_id``. Each node's receipt is
judged on its own by check 2 (:mod:`.grants`: a live grant at the head block that node decided
at, no revocation it should have seen left out), so a node that kept a revoked grant's fragment
and served is flagged whatever the other nodes did.

Each node also anchors its own receipts on AccessLog with its own key (its own sequence of
batches): :func:`verify_node_databases` runs check 1 (:func:`~.receipts.verify_receipts`, the
service's receipt audit: rows, signatures, rebuilt roots, Merkle proofs) on each node's database
against the roots THAT node anchored, so a node's operator who alters, adds or drops a receipt
row is named (``threshold.receipts``) instead of trusted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from kizuna.db.engine import Database
from kizuna.services.audit.grants import STALE_HEAD_SLACK_S, _read_problems
from kizuna.services.audit.history import ChainHistory
from kizuna.services.audit.receipts import verify_receipts
from kizuna.services.audit.report import CheckReport, Finding, hex_of
from kizuna.services.audit.stored import ReceiptRow, load_receipts


def verify_threshold(history: ChainHistory, receipts_by_node: Mapping[str, Iterable[ReceiptRow]],
                     *, threshold: int,
                     stale_head_slack: int = STALE_HEAD_SLACK_S) -> CheckReport:
    """Per read (request id): ``threshold.dead_grant`` for each node whose receipt check 2
    refuses (no live grant, a missed revocation, a foreign record, ...), ``threshold.alone``
    when one node alone served it, ``threshold.too_few`` when fewer than ``threshold`` nodes
    served it with a live grant. ``receipts_by_node``: node address → that node's receipts."""
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ValueError(f"threshold must be an integer >= 1, got {threshold!r}")
    served: dict[bytes, list[tuple[str, ReceiptRow]]] = {}
    for node, rows in receipts_by_node.items():
        for row in rows:
            served.setdefault(bytes(row.request_id), []).append((node, row))
    failures: list[Finding] = []
    passed = alone = dead = 0
    for request_id, servers in served.items():
        subject = hex_of(request_id)
        live = []
        for node, row in servers:
            problems, via = _read_problems(history, row, stale_head_slack)
            if via and not problems:
                live.append(node)
                continue
            dead += 1
            why = "; ".join(reason for _, reason in problems) or "the ledger did not allow it"
            failures.append(Finding("threshold.dead_grant", subject,
                                    f"node {node} served it without a live grant: {why}"))
        if len(servers) == 1:
            alone += 1
            failures.append(Finding("threshold.alone", subject,
                                    f"node {servers[0][0]} served it alone"))
        if len(live) < threshold:
            failures.append(Finding("threshold.too_few", subject,
                                    f"{len(live)} node(s) with a live grant served it "
                                    f"({', '.join(live) or 'none'}), {threshold} are needed"))
        elif len(live) == len(servers):
            passed += 1
    return CheckReport(name="threshold", checked=len(served), passed=passed,
                       failures=tuple(failures),
                       counts={"nodes": len(receipts_by_node), "served_alone": alone,
                               "served_without_grant": dead})


def verify_node_databases(history: ChainHistory, databases: Mapping[str, str], *,
                          threshold: int) -> CheckReport:
    """:func:`verify_threshold` over each node's own database (node address → database URL,
    read only here), plus check 1 of each node's receipts against the roots that node
    anchored (``threshold.receipts``, naming the node; each receipt's leaf must name that
    node, so a receipt moved from another node's database is caught): what ``kizuna audit
    threshold`` runs.
    A node's receipts not anchored yet (newer than its last batch) are pending, not findings."""
    receipts: dict[str, list[ReceiptRow]] = {}
    anchored: list[Finding] = []
    pending = anchored_batches = 0
    for node, url in databases.items():
        database = Database(url)
        try:
            receipts[node] = load_receipts(database)
            checked = verify_receipts(history.chain, database, history,
                                      receipts=receipts[node], anchorer=node, node=node)
        finally:
            database.dispose()
        pending += checked.counts.get("pending", 0)
        anchored_batches += checked.counts.get("anchored_batches", 0)
        anchored.extend(Finding("threshold.receipts", f.subject,
                                f"node {node}: {f.check}: {f.reason}")
                        for f in checked.failures)
    report = verify_threshold(history, receipts, threshold=threshold)
    return dataclasses.replace(
        report, failures=report.failures + tuple(anchored),
        counts={**report.counts, "anchored_batches": anchored_batches,
                "receipts_pending_anchor": pending, "receipt_findings": len(anchored)})


__all__ = ["verify_node_databases", "verify_threshold"]
