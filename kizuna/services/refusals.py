"""Refused reads: a trace of every validly signed read request the access check refused.

A provider probing a patient who never granted anything (record ids are public on-chain) used to
leave nothing behind. Now :func:`serve_read <kizuna.services.read.serve_read>` notes each
refusal *of the access check* here — no grant, a revoked or expired grant, a superseded record,
a record of another patient, an unknown record, a reader who is not (or no longer) an active
provider — and the patient sees them as "attempted reads", the auditor in the log and the FHIR
export.

What is not recorded, and why:

* requests whose signature is missing, malformed or not the named provider's, and stale ones:
  they are refused before the access check, and a bad signature proves nothing about who asked
  (recording them would let anyone write entries in a provider's name). Not even counted.
* replays of a served request (the provider's own receipt exists already) and refusals after
  the access check allowed the read (no key fragments: the grant is live).

What a row holds: provider, patient, record id, a reason code, the time and the chain head the
service had seen — no plaintext, no request body, no signature. Recording never changes the
prober's answer: the refusal is re-raised unchanged, and a failure to record is logged, never
answered. Allowed reads never touch this table (the hot path gains no write).

The rate limit (:class:`RefusalLimits`) bounds what a prober can make the service write: at most
``per_patient_hour`` rows per (provider, patient) per clock hour and ``per_provider_hour`` rows
per provider per hour across all patients; beyond that a refusal only increments a counter
(``refused_read_counts.suppressed``) of the (provider, patient, hour) — or, past the provider's
cap, of the provider's own row for the hour (``patient = ''``), which auditors see and patients
do not (the service keeps no per-patient row for it: that is what the cap saves).
Only registered providers reach the access check (the read route needs a provider session and
the request must be signed by it), so the rows a deployment can be made to write are bounded by
providers x ``per_provider_hour`` x 2 per hour.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Connection, and_, func, insert, select, update

from kizuna.access.check import (
    BatchProofInvalid,
    GrantExpired,
    GrantRevoked,
    NoGrant,
    ProviderNotRegistered,
    RecordSuperseded,
    WrongPatient,
)
from kizuna.db import Database
from kizuna.db import schema as t
from kizuna.errors import AccessDenied, NotFoundError
from kizuna.types import Address, RecordId, checksum_address
from kizuna.wire.reads import AttemptedReads, RefusedRead, SuppressedRefusals

if TYPE_CHECKING:
    from kizuna.receipts.request import ReadRequest
    from kizuna.services.context import ServiceContext

log = logging.getLogger(__name__)

HOUR_S = 3600
PROVIDER_WIDE = ""
"""The ``patient`` of a provider's own counter row for an hour (all patients together)."""


class RefusalReason(StrEnum):
    """Why the access check refused a read (the code stored and shown)."""

    NO_GRANT = "no-grant"
    REVOKED = "revoked"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    WRONG_PATIENT = "wrong-patient"
    NOT_A_PROVIDER = "not-an-active-provider"
    UNKNOWN_RECORD = "unknown-record"
    PROOF_FAILS = "proof-fails"
    """A batch record whose Merkle proof (the service's row) does not lead to its batch's root."""
    REFUSED = "refused"
    """Any other refusal of the access check."""


_REASONS: tuple[tuple[type[Exception], RefusalReason], ...] = (
    (NoGrant, RefusalReason.NO_GRANT),
    (GrantRevoked, RefusalReason.REVOKED),
    (GrantExpired, RefusalReason.EXPIRED),
    (RecordSuperseded, RefusalReason.SUPERSEDED),
    (WrongPatient, RefusalReason.WRONG_PATIENT),
    (BatchProofInvalid, RefusalReason.PROOF_FAILS),
    (ProviderNotRegistered, RefusalReason.NOT_A_PROVIDER),
    (NotFoundError, RefusalReason.UNKNOWN_RECORD),
    (AccessDenied, RefusalReason.REFUSED),
)


def reason_of(error: Exception) -> RefusalReason | None:
    """The reason code of an access-check refusal; ``None`` for anything else."""
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return None


@dataclass(frozen=True, slots=True)
class RefusalLimits:
    """How many refused reads are written per clock hour (the rest are only counted)."""

    per_patient_hour: int = 20
    """Rows per (provider, patient) per hour."""
    per_provider_hour: int = 1000
    """Rows per provider per hour, all patients together."""


_C = t.refused_read_counts.c
_R = t.refused_reads.c


class RefusalLog:
    """Refused reads in the service database (shared by every instance), rate-limited."""

    def __init__(self, db: Database, limits: RefusalLimits | None = None) -> None:
        self.db = db
        self.limits = limits or RefusalLimits()

    def note(self, *, provider: Address, patient: Address, record_id: RecordId,
             reason: RefusalReason, refused_at: int, head_block: int) -> bool:
        """Record one refusal; ``False`` when the rate limit only counted it. One write
        transaction (``BEGIN IMMEDIATE`` on SQLite), so instances sharing the database agree
        on the counts."""
        provider, patient = checksum_address(provider), checksum_address(patient)
        hour = refused_at - refused_at % HOUR_S
        with self.db.write() as conn:
            total = _counts(conn, provider, PROVIDER_WIDE, hour)
            last = {"last_at": refused_at, "last_block": head_block}
            if total is not None and total >= self.limits.per_provider_hour:
                _bump(conn, provider, PROVIDER_WIDE, hour, suppressed=True, **last)
                return False
            pair = _counts(conn, provider, patient, hour)
            if pair is not None and pair >= self.limits.per_patient_hour:
                _bump(conn, provider, patient, hour, suppressed=True, **last)
                return False
            conn.execute(insert(t.refused_reads).values(
                provider=provider, patient=patient, record_id=bytes(record_id),
                reason=str(reason), refused_at=refused_at, head_block=head_block))
            for who, known in ((patient, pair), (PROVIDER_WIDE, total)):
                if known is None:
                    conn.execute(insert(t.refused_read_counts).values(
                        provider=provider, patient=who, hour=hour, recorded=1, suppressed=0,
                        **last))
                else:
                    _bump(conn, provider, who, hour, suppressed=False, **last)
        return True

    def attempts(self, *, patient: Address | None = None, provider: Address | None = None,
                 since: int | None = None, until: int | None = None,
                 limit: int = 1000) -> list[RefusedRead]:
        """Recorded refusals, oldest first (times inclusive), at most ``limit``."""
        query = select(_R.seq, _R.provider, _R.patient, _R.record_id, _R.reason,
                       _R.refused_at, _R.head_block)
        if patient is not None:
            query = query.where(_R.patient == checksum_address(patient))
        if provider is not None:
            query = query.where(_R.provider == checksum_address(provider))
        if since is not None:
            query = query.where(_R.refused_at >= since)
        if until is not None:
            query = query.where(_R.refused_at <= until)
        query = query.order_by(_R.seq).limit(limit)
        with self.db.read() as conn:
            return [RefusedRead(seq=int(r[0]), provider=Address(r[1]), patient=Address(r[2]),
                                record_id=RecordId(bytes(r[3])), reason=str(r[4]),
                                refused_at=int(r[5]), head_block=int(r[6]))
                    for r in conn.execute(query)]

    def suppressed(self, *, patient: Address | None = None, provider: Address | None = None,
                   since: int | None = None, until: int | None = None,
                   ) -> list[SuppressedRefusals]:
        """The hours with refusals only counted. With ``patient``: that patient's (the
        provider-wide rows name no patient, so they are left out)."""
        query = select(_C.provider, _C.patient, _C.hour, _C.suppressed, _C.last_at,
                       _C.last_block).where(_C.suppressed > 0)
        if patient is not None:
            query = query.where(_C.patient == checksum_address(patient))
        if provider is not None:
            query = query.where(_C.provider == checksum_address(provider))
        if since is not None:
            query = query.where(_C.hour + HOUR_S > since)
        if until is not None:
            query = query.where(_C.hour <= until)
        query = query.order_by(_C.hour, _C.provider, _C.patient)
        with self.db.read() as conn:
            return [SuppressedRefusals(provider=Address(r[0]),
                                       patient=Address(r[1]) if r[1] else None,
                                       hour_start=int(r[2]), count=int(r[3]),
                                       last_at=int(r[4]), last_block=int(r[5]))
                    for r in conn.execute(query)]

    def row_count(self) -> int:
        """Rows of ``refused_reads`` (what the rate limit bounds)."""
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.refused_reads))
                       .scalar_one())


def _where(provider: Address, patient: str, hour: int) -> ColumnElement[bool]:
    return and_(_C.provider == provider, _C.patient == patient, _C.hour == hour)


def _counts(conn: Connection, provider: Address, patient: str, hour: int) -> int | None:
    row = conn.execute(select(_C.recorded).where(_where(provider, patient, hour))).first()
    return None if row is None else int(row[0])


def _bump(conn: Connection, provider: Address, patient: str, hour: int, *,
          suppressed: bool, last_at: int, last_block: int) -> None:
    column = _C.suppressed if suppressed else _C.recorded
    conn.execute(update(t.refused_read_counts).where(_where(provider, patient, hour))
                 .values({column: column + 1, _C.last_at: last_at, _C.last_block: last_block}))


# -- use cases ---------------------------------------------------------------------------------


def record_refusal(ctx: ServiceContext, *, request: ReadRequest, error: Exception,
                   now: int | None = None) -> None:
    """Note ``error`` (raised by the access check for ``request``, whose signature was
    verified) in the refusal log. Never raises: the caller re-raises ``error`` unchanged, and a
    log that cannot be written must not change what the prober is told (it is logged here)."""
    reason = reason_of(error)
    if reason is None:
        return
    try:
        # The record's owner when the service knows the record (a request naming another
        # patient targets the owner's data); the named patient otherwise.
        try:
            patient = ctx.records.get(request.record_id).patient
        except NotFoundError:
            patient = checksum_address(request.patient)
        head = ctx.index.index.head
        ctx.refusals.note(provider=checksum_address(request.provider), patient=patient,
                          record_id=request.record_id, reason=reason,
                          refused_at=int(time.time()) if now is None else now,
                          head_block=head.number if head is not None else 0)
    except Exception:  # the refusal stands whatever happens here
        log.exception("could not record a refused read of %s by %s", request.patient,
                      request.provider)


def attempted_reads(ctx: ServiceContext, *, patient: str, since: int | None = None,
                    limit: int = 1000) -> AttemptedReads:
    """The refused reads of ``patient``'s records, oldest first, and the hours whose further
    refusals were only counted."""
    from kizuna.services.onchain import checked_address

    owner = checked_address("patient", patient)
    return AttemptedReads(
        attempts=tuple(ctx.refusals.attempts(patient=owner, since=since, limit=limit)),
        suppressed=tuple(ctx.refusals.suppressed(patient=owner, since=since)))


__all__ = [
    "RefusalLimits",
    "RefusalLog",
    "RefusalReason",
    "attempted_reads",
    "reason_of",
    "record_refusal",
]
