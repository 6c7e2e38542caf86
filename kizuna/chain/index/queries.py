"""The index's read queries: plain SQL over the projections, returning frozen models.

Liveness is the ledger's rule as kizuna.chain.liveness spells it in SQL (``LIVE_SQL``);
``now`` is always a block timestamp (the index head's), never the wall clock.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from kizuna.chain.liveness import LIVE_SQL
from kizuna.chain.models import (
    AccessRequest,
    BlockRef,
    CareEvent,
    CareEventKind,
    EmergencyAccess,
    Grant,
    Guardian,
    Provider,
    ReceiptBatch,
    Record,
)
from kizuna.types import Address, Commitment, RecordId, ScopeId

_LIVE = LIVE_SQL
_GRANT_COLUMNS = (
    "SELECT g.patient, g.provider, g.scope_id, g.expires_at, g.granted_block, "
    f"CASE WHEN {_LIVE} THEN 1 ELSE 0 END FROM grants g "
    "LEFT JOIN revoked_all r ON r.patient = g.patient AND r.provider = g.provider "
)


_HEAD = ("SELECT CAST(m.value AS INTEGER), b.hash, b.timestamp FROM index_meta m "
         "LEFT JOIN index_blocks b ON b.number = CAST(m.value AS INTEGER) "
         "WHERE m.key = 'last_block'")


def head(db: sqlite3.Connection) -> tuple[int, BlockRef | None]:
    """The last block fully indexed, and that block (hash, time) when the index has stored it
    (``None`` before the first sync). One statement, so one snapshot: the number and the
    block row cannot come from two different commits, and every read's access check (which
    asks for the head) runs one query for it, not two."""
    last, block_hash, timestamp = db.execute(_HEAD).fetchone()
    if block_hash is None:
        return int(last), None
    return int(last), BlockRef(number=int(last), hash=bytes(block_hash), timestamp=int(timestamp))


def _grant(row: Any) -> Grant:
    return Grant(patient=row[0], provider=row[1], scope_id=ScopeId(bytes(row[2])),
                 expires_at=int(row[3]), granted_block=int(row[4]), live=bool(row[5]))


def grants_of(db: sqlite3.Connection, patient: Address, *, now: int,
              live_only: bool) -> list[Grant]:
    sql = _GRANT_COLUMNS + "WHERE g.patient = ?"
    params: list[Any] = [now, patient]
    if live_only:
        sql += f" AND {_LIVE}"
        params.append(now)
    sql += " ORDER BY g.provider, g.scope_id"
    return [_grant(row) for row in db.execute(sql, params)]


def grants_to(db: sqlite3.Connection, provider: Address, *, now: int) -> list[Grant]:
    sql = _GRANT_COLUMNS + f"WHERE g.provider = ? AND {_LIVE} ORDER BY g.patient, g.scope_id"
    return [_grant(row) for row in db.execute(sql, (now, provider, now))]


def grantees(db: sqlite3.Connection, provider: Address, *, now: int) -> list[Address]:
    """Patients with at least one live grant to ``provider`` (uses ``grants_by_provider``)."""
    rows = db.execute(
        "SELECT DISTINCT g.patient FROM grants g LEFT JOIN revoked_all r "
        "ON r.patient = g.patient AND r.provider = g.provider "
        f"WHERE g.provider = ? AND {_LIVE} ORDER BY g.patient",
        (provider, now),
    ).fetchall()
    return [row[0] for row in rows]


def has_access(db: sqlite3.Connection, patient: Address, provider: Address, scope_id: bytes, *,
               now: int) -> bool:
    live = db.execute(
        "SELECT 1 FROM grants g LEFT JOIN revoked_all r "
        "ON r.patient = g.patient AND r.provider = g.provider "
        f"WHERE g.patient = ? AND g.provider = ? AND g.scope_id = ? AND {_LIVE}",
        (patient, provider, bytes(scope_id), now),
    ).fetchone()
    if live is not None:
        return True
    emergency = db.execute(
        "SELECT 1 FROM emergency_accesses WHERE patient = ? AND provider = ? "
        "AND closed_block IS NULL AND until > ?", (patient, provider, now)).fetchone()
    return emergency is not None


def scope_epoch(db: sqlite3.Connection, patient: Address, scope_id: bytes) -> int:
    """The key epoch of (patient, scope): how many revocations touched the scope —
    ``AccessRevoked`` of the scope, plus ``AllAccessRevoked`` of a provider holding a grant in
    it that no earlier ``revokeAll`` had ended (``projections._NEXT_EPOCHS_OF_PAIR``). 0 for a
    scope never revoked. Docs: docs/keys.md "Epochs"."""
    row = db.execute("SELECT epoch FROM scope_epochs WHERE patient = ? AND scope_id = ?",
                     (patient, bytes(scope_id))).fetchone()
    return int(row[0]) if row is not None else 0


_RECORD_COLUMNS = ("SELECT record_id, patient, commitment, scope_id, block_number, tx_hash,"
                   " supersedes, superseded_by, batch_root FROM records")


def _record(r: Any) -> Record:
    return Record(record_id=RecordId(bytes(r[0])), patient=r[1], commitment=Commitment(bytes(r[2])),
                  scope_id=ScopeId(bytes(r[3])), block_number=int(r[4]), tx_hash=bytes(r[5]),
                  supersedes=RecordId(bytes(r[6])) if r[6] is not None else None,
                  superseded_by=RecordId(bytes(r[7])) if r[7] is not None else None,
                  batch_root=bytes(r[8]) if r[8] is not None else None)


def records_of(db: sqlite3.Connection, patient: Address, *,
               include_superseded: bool) -> list[Record]:
    """A patient's records in chain order; a batch's records in their manifest's order (its
    event's block and log index, then the leaf's position)."""
    sql = _RECORD_COLUMNS + " WHERE patient = ?"
    if not include_superseded:
        sql += " AND superseded_by IS NULL"
    sql += " ORDER BY block_number, log_index, leaf_index"
    return [_record(r) for r in db.execute(sql, (patient,))]


def record(db: sqlite3.Connection, record_id: RecordId) -> Record | None:
    """One record by id (its primary key: no scan of the patient's records)."""
    r = db.execute(_RECORD_COLUMNS + " WHERE record_id = ?", (bytes(record_id),)).fetchone()
    return _record(r) if r is not None else None


def pending_batches(db: sqlite3.Connection) -> list[bytes]:
    """Roots of the batches registered on-chain whose manifest the index has not projected
    (kizuna.chain.index.batches), in chain order."""
    return [bytes(r[0]) for r in db.execute(
        "SELECT root FROM pending_batches ORDER BY block_number, log_index")]


def care_events(db: sqlite3.Connection, *, patient: Address | None, provider: Address | None,
                kind: CareEventKind | None, limit: int) -> list[CareEvent]:
    where: list[str] = []
    params: list[Any] = []
    if patient is not None:
        where.append("patient = ?")
        params.append(patient)
    if provider is not None:
        where.append("provider = ?")
        params.append(provider)
    if kind is not None:
        where.append("kind = ?")
        params.append(int(kind))
    sql = ("SELECT patient, provider, kind, actor, ref, flagged, block_number, tx_hash, log_index"
           " FROM care_events")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY block_number DESC, log_index DESC LIMIT ?"
    params.append(limit)
    return [
        CareEvent(patient=r[0], provider=r[1], kind=CareEventKind(int(r[2])), actor=r[3],
                  ref=Commitment(bytes(r[4])), flagged_for_review=bool(r[5]),
                  block_number=int(r[6]), tx_hash=bytes(r[7]), log_index=int(r[8]))
        for r in db.execute(sql, params)
    ]


def emergency_accesses(db: sqlite3.Connection, *, patient: Address | None,
                       provider: Address | None,
                       awaiting_review: bool | None) -> list[EmergencyAccess]:
    where: list[str] = []
    params: list[Any] = []
    if patient is not None:
        where.append("e.patient = ?")
        params.append(patient)
    if provider is not None:
        where.append("e.provider = ?")
        params.append(provider)
    if awaiting_review is True:
        where.append("v.tx_hash IS NULL")
    elif awaiting_review is False:
        where.append("v.tx_hash IS NOT NULL")
    sql = ("SELECT e.patient, e.provider, e.until, e.reason_code, e.block_number, e.tx_hash,"
           " e.log_index, e.closed_by, e.closed_block, v.tx_hash IS NOT NULL, v.reviewer,"
           " v.reviewed_at"
           " FROM emergency_accesses e LEFT JOIN emergency_reviews v"
           " ON v.tx_hash = e.tx_hash AND v.log_index = e.log_index")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY e.block_number DESC, e.log_index DESC"
    return [
        EmergencyAccess(patient=r[0], provider=r[1], until=int(r[2]), reason_code=int(r[3]),
                        block_number=int(r[4]), tx_hash=bytes(r[5]), log_index=int(r[6]),
                        closed_by=r[7], closed_block=int(r[8]) if r[8] is not None else None,
                        reviewed=bool(r[9]), reviewed_by=r[10],
                        reviewed_at=int(r[11]) if r[11] is not None else None)
        for r in db.execute(sql, params)
    ]


def access_requests(db: sqlite3.Connection, *, patient: Address | None,
                    provider: Address | None, now: int) -> list[AccessRequest]:
    sql = ("SELECT patient, provider, open_until, ref, block_number FROM access_requests"
           " WHERE open_until > ?")
    params: list[Any] = [now]
    if patient is not None:
        sql += " AND patient = ?"
        params.append(patient)
    if provider is not None:
        sql += " AND provider = ?"
        params.append(provider)
    sql += " ORDER BY block_number DESC"
    return [AccessRequest(patient=r[0], provider=r[1], open_until=int(r[2]),
                          ref=Commitment(bytes(r[3])), block_number=int(r[4]))
            for r in db.execute(sql, params)]


def guardians_of(db: sqlite3.Connection, patient: Address, *, now: int) -> list[Guardian]:
    rows = db.execute("SELECT patient, guardian, until FROM guardians WHERE patient = ? "
                      "AND until > ? ORDER BY guardian", (patient, now))
    return [Guardian(patient=r[0], guardian=r[1], until=int(r[2])) for r in rows]


def wards_of(db: sqlite3.Connection, guardian: Address, *, now: int) -> list[Guardian]:
    """The live appointments of ``guardian``: the patients it may act for."""
    rows = db.execute("SELECT patient, guardian, until FROM guardians WHERE guardian = ? "
                      "AND until > ? ORDER BY patient", (guardian, now))
    return [Guardian(patient=r[0], guardian=r[1], until=int(r[2])) for r in rows]


def providers(db: sqlite3.Connection, *, active_only: bool) -> list[Provider]:
    sql = ("SELECT address, umbral_public_key, credential_commitment, active, registered_block"
           " FROM providers")
    if active_only:
        sql += " WHERE active = 1"
    sql += " ORDER BY address"
    return [Provider(address=r[0], umbral_public_key=bytes(r[1]),
                     credential_commitment=bytes(r[2]), active=bool(r[3]),
                     registered_block=int(r[4]))
            for r in db.execute(sql)]


def provider_active(db: sqlite3.Connection, provider: Address) -> bool:
    """Whether ``provider`` is registered and not suspended (``isActiveProvider``)."""
    row = db.execute("SELECT active FROM providers WHERE address = ?", (provider,)).fetchone()
    return row is not None and bool(row[0])


def has_role(db: sqlite3.Connection, contract: str, role: bytes, account: Address) -> bool:
    """Whether ``account`` holds AccessControl ``role`` in ``contract`` (``hasRole``)."""
    row = db.execute("SELECT 1 FROM roles WHERE contract = ? AND role = ? AND account = ?",
                     (contract, bytes(role), account)).fetchone()
    return row is not None


def roles_of(db: sqlite3.Connection, account: Address) -> list[tuple[str, bytes]]:
    """Every (contract, role id) ``account`` holds, sorted."""
    rows = db.execute("SELECT contract, role FROM roles WHERE account = ? "
                      "ORDER BY contract, role", (account,))
    return [(r[0], bytes(r[1])) for r in rows]


def role_holders(db: sqlite3.Connection, contract: str, role: bytes) -> list[Address]:
    """Every account holding ``role`` in ``contract``, sorted."""
    rows = db.execute("SELECT account FROM roles WHERE contract = ? AND role = ? "
                      "ORDER BY account", (contract, bytes(role)))
    return [r[0] for r in rows]


def receipt_batches(db: sqlite3.Connection) -> list[ReceiptBatch]:
    rows = db.execute("SELECT batch_index, root, count, from_time, to_time, anchored_by,"
                      " block_number, tx_hash FROM receipt_roots"
                      " ORDER BY block_number, batch_index")
    return [ReceiptBatch(batch_index=int(r[0]), root=bytes(r[1]), count=int(r[2]),
                         from_time=int(r[3]), to_time=int(r[4]), anchored_by=r[5],
                         block_number=int(r[6]), tx_hash=bytes(r[7]))
            for r in rows]


__all__ = [
    "access_requests",
    "care_events",
    "emergency_accesses",
    "grantees",
    "grants_of",
    "grants_to",
    "guardians_of",
    "has_access",
    "has_role",
    "head",
    "pending_batches",
    "provider_active",
    "providers",
    "receipt_batches",
    "record",
    "records_of",
    "role_holders",
    "roles_of",
    "wards_of",
]
