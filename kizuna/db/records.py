"""The ``records`` table's rows as a typed value: what the service knows about a record.

One definition for every reader: the access check (by id, on the read path) and the record
use cases (listing, downloads). A row is written once, after the chain registered the record,
and never changes.
"""

from __future__ import annotations

from sqlalchemy import select

from kizuna.db.engine import Database
from kizuna.db.schema import records
from kizuna.types import Cid, Commitment, RecordId, ScopeId, checksum_address
from kizuna.wire.records import RecordInfo


def record_from_row(row: object) -> RecordInfo:
    """A ``records`` row (all columns) as a :class:`RecordInfo`."""
    r = row._mapping  # type: ignore[attr-defined]
    return RecordInfo(
        record_id=RecordId(bytes(r["record_id"])),
        patient=checksum_address(r["patient"]),
        scope_id=ScopeId(bytes(r["scope_id"])),
        cid=Cid(r["cid"]),
        commitment=Commitment(bytes(r["commitment"])),
        size=int(r["size"]),
        content_type=str(r["content_type"]),
        created_at=int(r["created_at"]),
        epoch=int(r["epoch"]),
        batch_root=bytes(r["batch_root"]) if r["batch_root"] is not None else None,
        leaf_index=int(r["leaf_index"]) if r["leaf_index"] is not None else None,
        proof=bytes(r["proof"]) if r["proof"] is not None else None,
    )


def load_record(db: Database, record_id: bytes) -> RecordInfo | None:
    """The row of ``record_id``, or ``None``."""
    with db.read() as conn:
        row = conn.execute(select(records).where(records.c.record_id == bytes(record_id))).first()
    return record_from_row(row) if row is not None else None


def load_records(db: Database, record_ids: list[bytes]) -> dict[bytes, RecordInfo]:
    """The rows of ``record_ids`` that exist, by id: one query (a bulk read checks a few
    hundred ids at once, not one connection and query each)."""
    with db.read() as conn:
        rows = conn.execute(select(records).where(
            records.c.record_id.in_([bytes(r) for r in record_ids]))).all()
    return {bytes(info.record_id): info for info in map(record_from_row, rows)}


__all__ = ["load_record", "load_records", "record_from_row"]
