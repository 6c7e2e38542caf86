"""Check 3: the stored ciphertext of each record matches its on-chain commitment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address
from sqlalchemy import select

from kizuna.crypto.commitment import CommitmentHasher
from kizuna.db import schema
from kizuna.errors import ContentNotFound, StorageError
from kizuna.services.audit.history import ChainHistory
from kizuna.services.audit.report import CheckReport, Finding, hex_of
from kizuna.storage.unixfs import ContentIntegrityError
from kizuna.types import Cid, Commitment

if TYPE_CHECKING:
    from kizuna.db import Database
    from kizuna.storage.store import ContentStore


def verify_content(history: ChainHistory, database: Database, store: ContentStore, *,
                   patient: str | None = None) -> CheckReport:
    """Check 3: each registered record's stored ciphertext hashes to its on-chain commitment.

    Streams each envelope from the store (constant memory). A record whose CID the service
    does not know (registered through another service) is counted as ``unknown_cid``, not
    failed: nothing here can fetch it.
    """
    want = to_checksum_address(patient) if patient else None
    with database.read() as connection:
        known = {bytes(r[0]): (Cid(r[1]), Commitment(bytes(r[2])))
                 for r in connection.execute(select(schema.records.c.record_id,
                                                    schema.records.c.cid,
                                                    schema.records.c.commitment))}
    failures: list[Finding] = []
    checked = passed = unknown = 0
    hashed_bytes = 0
    for record_id, event in history.records.items():
        if want is not None and event.args["patient"] != want:
            continue
        expected = bytes(event.args["commitment"])
        row = known.get(record_id)
        if row is None:
            unknown += 1
            continue
        checked += 1
        cid, db_commitment = row
        subject = hex_of(record_id)
        if db_commitment != expected:
            failures.append(Finding("content.db_commitment", subject, "the service's records "
                                    "table holds another commitment than the chain"))
        hasher = CommitmentHasher()
        try:
            with store.get(cid) as stream:
                for chunk in stream:
                    hasher.update(chunk)
        except ContentNotFound:
            failures.append(Finding("content.missing", subject, f"no content under {cid}"))
            continue
        except ContentIntegrityError as exc:
            failures.append(Finding("content.integrity", subject, f"the store's bytes under "
                                    f"{cid} do not match the CID (tampered): {exc}"))
            continue
        except StorageError as exc:
            failures.append(Finding("content.unavailable", subject, f"{cid}: {exc}"))
            continue
        hashed_bytes += hasher.size
        if hasher.finish() != expected:
            failures.append(Finding("content.commitment", subject, f"SHA-256 of the content "
                                    f"under {cid} is not the registered commitment"))
            continue
        if db_commitment == expected:
            passed += 1
    return CheckReport(name="content", checked=checked, passed=passed, failures=tuple(failures),
                       counts={"unknown_cid": unknown, "bytes_hashed": hashed_bytes})
