"""Check 3: the stored ciphertext of each record matches its on-chain commitment.

A record registered alone has its commitment in its ``RecordRegistered`` event. A record
registered in a batch has it in a leaf of the batch's manifest, and the chain holds only the
batch's root (with its patient and count): the service's row (``records.batch_root``,
``proof``) must lead by its Merkle proof from the leaf (record id, scope id, commitment) to a
root the chain registered *for the row's patient*; only then is the row's commitment the
chain's, and the stored ciphertext is hashed against it. Each batch's manifest in the store
must rebuild to its root (docs/audit.md "Content").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address
from sqlalchemy import select

from kizuna.batch import BatchLeaf, proof_leads_to, unpack_proof
from kizuna.crypto.commitment import CommitmentHasher
from kizuna.db import schema
from kizuna.errors import ContentNotFound, InputError, StorageError
from kizuna.services.audit.history import ChainHistory
from kizuna.services.audit.report import CheckReport, Finding, hex_of
from kizuna.services.context import stored_manifests
from kizuna.storage.unixfs import ContentIntegrityError
from kizuna.types import Cid, Commitment, RecordId, ScopeId

if TYPE_CHECKING:
    from kizuna.db import Database
    from kizuna.storage.store import ContentStore


@dataclass(frozen=True, slots=True)
class _Row:
    """A ``records`` row as the check reads it."""

    patient: str
    scope_id: ScopeId
    cid: Cid
    commitment: Commitment
    batch_root: bytes | None
    proof: bytes | None


def verify_content(history: ChainHistory, database: Database, store: ContentStore, *,
                   patient: str | None = None) -> CheckReport:
    """Check 3: each registered record's stored ciphertext hashes to its on-chain commitment
    (a batch record's: the one its proof leads to the patient's on-chain root with), and each
    batch's stored manifest rebuilds to its root.

    Streams each envelope from the store (constant memory). A record whose CID the service
    does not know (registered through another service) is counted as ``unknown_cid``, not
    failed: nothing here can fetch it; so is a batch whose manifest the service does not
    list (``batches_unknown``). Adds the service's manifests to ``history``.
    """
    want = to_checksum_address(patient) if patient else None
    history.add_manifests(stored_manifests(database, store))
    c = schema.records.c
    with database.read() as connection:
        rows = {bytes(r[0]): _Row(r[1], ScopeId(bytes(r[2])), Cid(r[3]), Commitment(bytes(r[4])),
                                  bytes(r[5]) if r[5] is not None else None,
                                  bytes(r[6]) if r[6] is not None else None)
                for r in connection.execute(select(c.record_id, c.patient, c.scope_id, c.cid,
                                                   c.commitment, c.batch_root, c.proof))}
        listed = {bytes(r[0]): (r[1], int(r[2])) for r in connection.execute(
            select(schema.record_batches.c.root, schema.record_batches.c.patient,
                   schema.record_batches.c.count))}
    run = _Run(store)
    in_rows = _check_records(run, history, rows, want)
    _check_batches(run, history, listed, in_rows, want)
    return CheckReport(name="content", checked=run.checked, passed=run.passed,
                       failures=tuple(run.failures),
                       counts={"unknown_cid": run.unknown, "bytes_hashed": run.hashed_bytes,
                               "batch_records": run.batch_records, "batches": run.batches,
                               "batches_unknown": run.batches_unknown})


def _check_records(run: _Run, history: ChainHistory, rows: dict[bytes, _Row],
                   want: str | None) -> set[tuple[bytes, bytes]]:
    """The records registered alone, then those the service says it registered in a batch;
    the (root, record id) of the latter."""
    # Records registered alone: the event's commitment. A row naming a batch is checked below.
    for record_id, event in history.records.items():
        if want is not None and event.args["patient"] != want:
            continue
        row = rows.get(record_id)
        if row is None or row.batch_root is not None:
            if row is None:
                run.unknown += 1
            continue
        run.checked += 1
        subject = hex_of(record_id)
        expected = bytes(event.args["commitment"])
        db_ok = row.commitment == expected
        if not db_ok:
            run.fail("content.db_commitment", subject, "the service's records table holds "
                     "another commitment than the chain")
        if run.hashes_to(row.cid, expected, subject) and db_ok:
            run.passed += 1

    # Records the service says it registered in a batch: the proof first, then the bytes.
    in_rows: set[tuple[bytes, bytes]] = set()
    for record_id, row in rows.items():
        if row.batch_root is None or (want is not None and row.patient != want):
            continue
        run.checked += 1
        run.batch_records += 1
        in_rows.add((row.batch_root, record_id))
        subject = hex_of(record_id)
        if _batch_row_holds(run, history, record_id, row, subject) and run.hashes_to(
                row.cid, row.commitment, subject):
            run.passed += 1

    return in_rows


def _check_batches(run: _Run, history: ChainHistory, listed: dict[bytes, tuple[str, int]],
                   in_rows: set[tuple[bytes, bytes]], want: str | None) -> None:
    """Each batch the chain registered against its manifest and the service's list of it."""
    # The batches themselves: each manifest rebuilds to its root; the service's list agrees.
    for root, event in history.batches.items():
        owner = event.args["patient"]
        if want is not None and owner != want:
            continue
        subject = hex_of(root)
        problem = history.manifest_problems.get(root)
        if problem is not None:
            run.fail("content.batch_manifest", subject, f"the stored manifest of the batch "
                     f"is not the one the chain registered: {problem}")
            continue
        manifest = history.manifests.get(root)
        if manifest is None and root in listed:
            run.fail("content.batch_manifest", subject, "the service lists the batch but its "
                     "manifest is not in the store")
            continue
        if manifest is None:
            run.batches_unknown += 1
            run.unknown += int(event.args["count"])
            continue
        run.batches += 1
        run.unknown += sum(1 for leaf in manifest.leaves
                           if (root, bytes(leaf.record_id)) not in in_rows)
        mine = listed.get(root)
        if mine is not None and mine != (owner, manifest.count):
            run.fail("content.batch_db_record", subject, f"the service lists the batch as "
                     f"{mine[1]} records of {mine[0]}; the chain registered "
                     f"{manifest.count} of {owner}")
    for root, (owner, _) in listed.items():
        if root not in history.batches and (want is None or owner == want):
            run.fail("content.batch_unknown_root", hex_of(root), "the service lists a batch "
                     "whose root the chain never registered")


def _batch_row_holds(run: _Run, history: ChainHistory, record_id: bytes, row: _Row,
                     subject: str) -> bool:
    """The row's batch is on chain, the row's patient's, and its proof leads there."""
    assert row.batch_root is not None
    root = hex_of(row.batch_root)
    event = history.batches.get(row.batch_root)
    if event is None:
        run.fail("content.batch_unknown_root", subject, f"the row names batch {root}, whose "
                 "root the chain never registered")
        return False
    owner = event.args["patient"]
    if owner != row.patient:
        run.fail("content.batch_patient", subject, f"the row's patient is {row.patient} but "
                 f"the chain registered batch {root} for {owner}")
        return False
    try:
        leaf = BatchLeaf(RecordId(record_id), row.scope_id, row.commitment)
        leads = proof_leads_to(row.batch_root, leaf, unpack_proof(row.proof or b""))
    except InputError as exc:
        run.fail("content.batch_proof", subject, f"the row's proof is malformed: {exc}")
        return False
    if not leads:
        run.fail("content.batch_proof", subject, f"the row's proof does not lead from its "
                 f"leaf (record id, scope id, commitment) to the batch root {root}")
        return False
    return True


class _Run:
    """Counts and findings of one check, and the hashing of stored envelopes."""

    def __init__(self, store: ContentStore) -> None:
        self.store = store
        self.failures: list[Finding] = []
        self.checked = self.passed = self.unknown = self.hashed_bytes = 0
        self.batch_records = self.batches = self.batches_unknown = 0

    def fail(self, check: str, subject: str, reason: str) -> None:
        self.failures.append(Finding(check, subject, reason))

    def hashes_to(self, cid: Cid, expected: bytes, subject: str) -> bool:
        """The content under ``cid`` hashes (SHA-256, streamed) to ``expected``; a finding
        saying why not otherwise."""
        hasher = CommitmentHasher()
        try:
            with self.store.get(cid) as stream:
                for chunk in stream:
                    hasher.update(chunk)
        except ContentNotFound:
            self.fail("content.missing", subject, f"no content under {cid}")
            return False
        except ContentIntegrityError as exc:
            self.fail("content.integrity", subject, f"the store's bytes under {cid} do not "
                      f"match the CID (tampered): {exc}")
            return False
        except StorageError as exc:
            self.fail("content.unavailable", subject, f"{cid}: {exc}")
            return False
        self.hashed_bytes += hasher.size
        if hasher.finish() != expected:
            self.fail("content.commitment", subject, f"SHA-256 of the content under {cid} is "
                      "not the registered commitment")
            return False
        return True
