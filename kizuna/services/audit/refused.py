"""Refused reads, as the service recorded them, as log entries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kizuna.services.audit.entries import AuditEntry, EntryKind
from kizuna.types import Address

if TYPE_CHECKING:
    from kizuna.db import Database


def refused_entries(database: Database, *, patient: Address | None = None,
                    provider: Address | None = None, since: int | None = None,
                    until: int | None = None) -> list[AuditEntry]:
    """The refused reads the service recorded (kizuna.services.refusals) as ``REFUSED_READ``
    entries (at the head block the service had seen, after that block's events), and each hour
    whose further refusals were only counted as one ``REFUSED_READS_SUPPRESSED`` entry at its
    last counted refusal (``details.count``; no patient when past the provider's cap)."""
    from kizuna.services.refusals import RefusalLog

    refusals = RefusalLog(database)
    out = [AuditEntry(kind=EntryKind.REFUSED_READ, event="refused-read",
                      block_number=r.head_block, log_index=-1, tx_hash=b"", time=r.refused_at,
                      patient=r.patient, provider=r.provider, record_id=r.record_id,
                      flags=frozenset({"refused"}), details={"reason": r.reason})
           for r in refusals.attempts(patient=patient, provider=provider, since=since,
                                      until=until, limit=1 << 62)]
    for s in refusals.suppressed(patient=patient, provider=provider, since=since, until=until):
        out.append(AuditEntry(kind=EntryKind.REFUSED_READS_SUPPRESSED, event="refused-read",
                              block_number=s.last_block, log_index=-1, tx_hash=b"",
                              time=s.last_at,
                              patient=s.patient, provider=s.provider,
                              flags=frozenset({"refused", "rate-limited"}),
                              details={"count": s.count, "hourStart": s.hour_start}))
    return out
