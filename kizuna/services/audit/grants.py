"""Check 2: each read had a live grant (or an open emergency access) at its head block."""

from __future__ import annotations

import random
from collections.abc import Iterable

from kizuna.errors import ChainError
from kizuna.receipts.request import MAX_CLOCK_SKEW_S
from kizuna.services.audit.history import ChainHistory
from kizuna.services.audit.report import CheckReport, Finding, hex_of
from kizuna.services.audit.stored import ReceiptRow

STALE_HEAD_SLACK_S = 15
"""A revocation mined this many seconds (block time) or more before a read was served must be
in the head block the read was decided at; closer than that, the read may have been in flight."""


def verify_access(history: ChainHistory, receipts: Iterable[ReceiptRow], *,
                  stale_head_slack: int = STALE_HEAD_SLACK_S, eth_call_sample: int = 0,
                  seed: int | None = None) -> CheckReport:
    """Check 2: each read was allowed by the ledger at the head block it was decided at.

    Per receipt: the record is registered to the receipt's patient with the receipt's scope
    before the head block; the head block exists and is not after the serving time; the
    request was fresh (``issuedAt`` within the service's ±120 s of ``servedAt``); the reader
    was a registered provider (an active one when only an emergency access authorised it, as
    the service's access check requires); ``hasAccess`` held at the head block (rebuilt from
    events); and no revocation mined well before the read (``stale_head_slack`` seconds) was
    left out of its head block.

    ``history`` must hold the batches' manifests (``load_history(manifests=)``, as
    :func:`~kizuna.services.audit.audit` loads it) for reads of records registered in a batch;
    without, such a read is reported as of a record not registered, saying how many of the
    patient's batches had no manifest.

    ``eth_call_sample``: for that many random receipts, also ask the node for
    ``hasAccess`` at the head block (``eth_call`` with a historical block tag) and compare it
    with the event replay (``access.eth_call_mismatch``); a node without that state (not an
    archive node) is counted ``eth_call_unavailable``, not failed.
    """
    rows = list(receipts)
    failures, cross_checked, unavailable = _cross_check(history, rows, eth_call_sample, seed)
    by_grant = by_emergency = bad = 0
    for r in rows:
        problems, via = _read_problems(history, r, stale_head_slack)
        if via == "grant":
            by_grant += 1
        elif via == "emergency":
            by_emergency += 1
        if problems:
            bad += 1
            failures.extend(Finding(c, hex_of(r.request_id), why) for c, why in problems)
    return CheckReport(name="access", checked=len(rows), passed=len(rows) - bad,
                       failures=tuple(failures),
                       counts={"by_grant": by_grant, "by_emergency": by_emergency,
                               "eth_call_checked": cross_checked,
                               "eth_call_unavailable": unavailable})


def _cross_check(history: ChainHistory, rows: list[ReceiptRow], sample: int,
                 seed: int | None) -> tuple[list[Finding], int, int]:
    """``hasAccess`` asked of the node at the head block of ``sample`` random reads, against
    the event replay: (findings, number compared, number the node could not answer)."""
    failures: list[Finding] = []
    cross_checked = unavailable = 0
    for r in random.Random(seed).sample(rows, min(sample, len(rows))):
        if r.head_block > history.head_block:
            continue
        try:
            on_chain = history.chain.ledger.has_access(r.patient, r.provider, r.scope_id,
                                                       block=r.head_block)
        except ChainError:
            unavailable += 1
            continue
        cross_checked += 1
        replayed = history.access_at(r.patient, r.provider, r.scope_id, r.head_block)
        if on_chain != replayed.allowed:
            failures.append(Finding("access.eth_call_mismatch", hex_of(r.request_id),
                                    f"hasAccess at block {r.head_block} is {on_chain} on the "
                                    f"node but {replayed.allowed} from the events "
                                    f"({replayed.reason})"))
    return failures, cross_checked, unavailable


_Problems = list[tuple[str, str]]


def _record_problems(history: ChainHistory, r: ReceiptRow) -> _Problems:
    """The record is registered (alone, or in a batch whose manifest rebuilds to the root) to
    the receipt's patient, with its scope, before the read."""
    record = history.registration(r.record_id, patient=r.patient)
    if record is None:
        unread = [root for root, e in history.batches.items()
                  if e.args["patient"] == r.patient and history.manifests.get(root) is None]
        return [("access.record", "the record id is not registered on-chain" + (
            f" (alone, nor in a batch of the patient's whose manifest was available: "
            f"{len(unread)} not)" if unread else ""))]
    problems: _Problems = []
    if record.patient != r.patient:
        problems.append(("access.record", f"the record belongs to {record.patient}, not to "
                         f"the receipt's patient {r.patient}"))
    if bytes(record.scope_id) != bytes(r.scope_id):
        problems.append(("access.record", "the receipt's scope is not the record's "
                         "registered scope"))
    if record.block_number > r.head_block:
        problems.append(("access.record", f"the record was registered in block "
                         f"{record.block_number}, after the read's head block "
                         f"{r.head_block}"))
    return problems


def _read_problems(history: ChainHistory, r: ReceiptRow,
                   stale_head_slack: int) -> tuple[_Problems, str]:
    """What is wrong with one read (empty when it was allowed), and how the ledger allowed it
    (``"grant"`` / ``"emergency"``, counted even when another check failed; ``""`` when it
    did not, or a revocation was missed)."""
    problems = _record_problems(history, r)
    if r.head_block > history.head_block:
        problems.append(("access.head_block", f"head block {r.head_block} is beyond the "
                         f"chain head {history.head_block}"))
        return problems, ""
    head_time = history.block_time(r.head_block)
    if head_time > r.served_at + MAX_CLOCK_SKEW_S:
        problems.append(("access.head_block", f"head block {r.head_block} (time "
                         f"{head_time}) is later than the serving time {r.served_at}"))
    if r.issued_at < 0 or abs(r.served_at - r.issued_at) > MAX_CLOCK_SKEW_S:
        problems.append(("access.stale_request", f"issuedAt {r.issued_at} is more than "
                         f"{MAX_CLOCK_SKEW_S} s from servedAt {r.served_at}"))
    decision = history.access_at(r.patient, r.provider, r.scope_id, r.head_block)
    registered = history.provider_at(r.provider, r.head_block)
    if registered is None:
        problems.append(("access.provider", f"{r.provider} was not in the provider "
                         f"registry at head block {r.head_block}"))
    elif not registered and decision.via == "emergency":
        problems.append(("access.provider", f"{r.provider} was suspended at head block "
                         f"{r.head_block}: an emergency access needs an active provider"))
    if not decision.allowed:
        problems.append(("access.no_grant", f"no live grant at head block {r.head_block}: "
                         f"{decision.reason}"))
        return problems, ""
    missed = history.denials_between(r.patient, r.provider, r.scope_id, r.head_block,
                                     r.served_at - stale_head_slack)
    if missed:
        block, tx = missed[0]
        problems.append(("access.stale_head", f"decided at head block {r.head_block} "
                         f"although a revocation was mined in block {block} "
                         f"(tx {hex_of(tx)}) at least {stale_head_slack} s before the "
                         "read was served"))
        return problems, ""
    return problems, decision.via
