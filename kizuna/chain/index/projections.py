"""How each Kizuna event changes the index's projections — the contracts' state, replayed.

One handler per event, each a few SQL statements mirroring what the contract did when it
emitted the event (see ConsentLedger.sol): a grant upserts the (patient, provider, scope) row
with its block, ``AllAccessRevoked`` records the block (grants from that block or earlier are
dead, exactly as ``_isLive`` says) and closes the pair's request and emergency access, and so on.
Revocations also count up the scope key epochs (``scope_epochs``, docs/keys.md "Epochs"), which
the contract does not store: the index is where that rule lives.
``RoleGranted`` / ``RoleRevoked`` of the AccessControl contracts (``ProviderRegistry``'s
registrars, ``AccessLog``'s anchorers and auditors) keep the ``roles`` table: who holds which role
now, which the API reads at every role-gated request. Events with no projection
(``GuardianActed``, ``RoleAdminChanged``) live in ``raw_logs`` only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from kizuna.chain.index.events import DecodedEvent
from kizuna.chain.liveness import NOT_REVOKED_ALL_SQL

MAX_INT64 = 2**63 - 1
"""SQL BIGINT is signed: expiries beyond it (``type(uint64).max``, "forever") are clamped."""

Cursor = sqlite3.Cursor
Statement = tuple[str, tuple[Any, ...]]
Handler = Callable[[DecodedEvent], Iterator[Statement]]


def _clamp(value: int) -> int:
    return value if value <= MAX_INT64 else MAX_INT64


_UPSERT_GRANT = (
    "INSERT INTO grants (patient, provider, scope_id, expires_at, granted_block) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (patient, provider, scope_id) DO UPDATE SET "
        "expires_at = excluded.expires_at, granted_block = excluded.granted_block"
)


def _granted(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield _UPSERT_GRANT, (a["patient"], a["provider"], a["scopeId"], _clamp(a["expiresAt"]),
                          e.block_number)


def _granted_batch(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    expires = _clamp(a["expiresAt"])
    for scope in a["scopeIds"]:
        yield _UPSERT_GRANT, (a["patient"], a["provider"], scope, expires, e.block_number)


_NEXT_EPOCH = (
    "INSERT INTO scope_epochs (patient, scope_id, epoch) VALUES (?, ?, 1) "
    "ON CONFLICT (patient, scope_id) DO UPDATE SET epoch = scope_epochs.epoch + 1"
)
"""A revocation moves the scope's key epoch (docs/keys.md "Epochs")."""

_NEXT_EPOCHS_OF_PAIR = (
    "INSERT INTO scope_epochs (patient, scope_id, epoch) "
    "SELECT g.patient, g.scope_id, 1 FROM grants g LEFT JOIN revoked_all r "
    "ON r.patient = g.patient AND r.provider = g.provider "
    f"WHERE g.patient = ? AND g.provider = ? AND {NOT_REVOKED_ALL_SQL} "
    "ON CONFLICT (patient, scope_id) DO UPDATE SET epoch = scope_epochs.epoch + 1"
)
"""A ``revokeAll`` moves the epoch of every scope the provider held a grant in that an earlier
``revokeAll`` had not ended already — live or expired: the handler has no block time, and an
expired grant's fragments may still be somewhere, so the rule errs towards moving."""


def _revoked(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield _NEXT_EPOCH, (a["patient"], a["scopeId"])
    yield ("DELETE FROM grants WHERE patient = ? AND provider = ? AND scope_id = ?",
                (a["patient"], a["provider"], a["scopeId"]))


def _all_revoked(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield _NEXT_EPOCHS_OF_PAIR, (a["patient"], a["provider"])  # before the pair's block moves
    yield (
        "INSERT INTO revoked_all (patient, provider, block_number) VALUES (?, ?, ?) "
        "ON CONFLICT (patient, provider) DO UPDATE SET block_number = excluded.block_number",
        (a["patient"], a["provider"], e.block_number),
    )
    yield ("DELETE FROM access_requests WHERE patient = ? AND provider = ?",
                (a["patient"], a["provider"]))
    yield _close_emergency(a["patient"], a["provider"], a["patient"], e.block_number)


def _record_registered(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    # The ledger refuses an id registered alone twice, but cannot check it against the leaves
    # of batches (off-chain): an id a batch holds already keeps its earlier row
    # (kizuna.chain.index.batches), and the index never stops on the duplicate.
    yield (
        "INSERT INTO records (record_id, patient, commitment, scope_id, block_number, log_index,"
        " tx_hash) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (record_id) DO NOTHING",
        (a["recordId"], a["patient"], a["commitment"], a["scopeId"], e.block_number,
         e.log_index, e.tx_hash),
    )


def _record_superseded(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    # Keyed by patient as on-chain: a batch record is retired in its own patient's namespace
    # only (a row of that id owned by someone else is not theirs to retire).
    yield ("UPDATE records SET superseded_by = ? WHERE record_id = ? AND patient = ?",
           (a["newRecordId"], a["oldRecordId"], a["patient"]))
    yield ("UPDATE records SET supersedes = ? WHERE record_id = ? AND patient = ?",
           (a["oldRecordId"], a["newRecordId"], a["patient"]))


def _batch_registered(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    # Pending until its manifest is projected (kizuna.chain.index.batches.project_batches,
    # right after the part's events): the chain has the root only.
    yield (
        "INSERT INTO pending_batches (root, patient, count, block_number, log_index, tx_hash) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (root) DO NOTHING",
        (a["root"], a["patient"], a["count"], e.block_number, e.log_index, e.tx_hash),
    )


def _care_event(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    provider = a["provider"] if int(a["provider"], 16) else None
    yield (
        "INSERT INTO care_events (block_number, log_index, patient, provider, kind, actor, ref,"
        " flagged, tx_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (e.block_number, e.log_index, a["patient"], provider, a["kind"], a["actor"], a["ref"],
         int(a["flaggedForReview"]), e.tx_hash),
    )


def _emergency_opened(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    # A new opening replaces an open one for the same pair (the contract overwrites the slot).
    yield _close_emergency(a["patient"], a["provider"], a["provider"], e.block_number)
    yield (
        "INSERT INTO emergency_accesses (block_number, log_index, patient, provider, until,"
        " reason_code, tx_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (e.block_number, e.log_index, a["patient"], a["provider"], _clamp(a["until"]),
         a["reasonCode"], e.tx_hash),
    )


def _close_emergency(patient: str, provider: str, closed_by: str, block: int) -> Statement:
    return (
        "UPDATE emergency_accesses SET closed_by = ?, closed_block = ? "
        "WHERE patient = ? AND provider = ? AND closed_block IS NULL",
        (closed_by, block, patient, provider),
    )


def _emergency_closed(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield _close_emergency(a["patient"], a["provider"], a["closedBy"], e.block_number)


def _requested(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield (
        "INSERT INTO access_requests (patient, provider, open_until, ref, block_number) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (patient, provider) DO UPDATE SET "
        "open_until = excluded.open_until, ref = excluded.ref, "
        "block_number = excluded.block_number",
        (a["patient"], a["provider"], _clamp(a["openUntil"]), a["ref"], e.block_number),
    )


def _request_closed(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield ("DELETE FROM access_requests WHERE patient = ? AND provider = ?",
                (a["patient"], a["provider"]))


def _guardian_appointed(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield (
        "INSERT INTO guardians (patient, guardian, until) VALUES (?, ?, ?) "
        "ON CONFLICT (patient, guardian) DO UPDATE SET until = excluded.until",
        (a["patient"], a["guardian"], _clamp(a["until"])),
    )


def _guardian_removed(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield ("DELETE FROM guardians WHERE patient = ? AND guardian = ?",
                (a["patient"], a["guardian"]))


def _policy_set(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield (
        "INSERT INTO emergency_policies (patient, allowed, max_duration) VALUES (?, ?, ?) "
        "ON CONFLICT (patient) DO UPDATE SET allowed = excluded.allowed, "
        "max_duration = excluded.max_duration",
        (a["patient"], int(a["allowed"]), _clamp(a["maxDuration"])),
    )


def _provider_added(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield (
        "INSERT INTO providers (address, umbral_public_key, credential_commitment, active,"
        " registered_block) VALUES (?, ?, ?, 1, ?)",
        (a["provider"], a["umbralPublicKey"], a["credentialCommitment"], e.block_number),
    )


def _provider_suspended(e: DecodedEvent) -> Iterator[Statement]:
    yield ("UPDATE providers SET active = 0 WHERE address = ?", (e.args["provider"],))


def _provider_reinstated(e: DecodedEvent) -> Iterator[Statement]:
    yield ("UPDATE providers SET active = 1 WHERE address = ?", (e.args["provider"],))


def _key_rotated(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield ("UPDATE providers SET umbral_public_key = ? WHERE address = ?",
                (a["umbralPublicKey"], a["provider"]))


def _role_granted(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    # AccessControl emits RoleGranted only when the account did not hold the role; the upsert
    # keeps a replay idempotent all the same.
    yield (
        "INSERT INTO roles (contract, role, account, granted_block) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (contract, role, account) DO UPDATE SET "
        "granted_block = excluded.granted_block",
        (e.contract, a["role"], a["account"], e.block_number),
    )


def _role_revoked(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args  # revokeRole and renounceRole both emit it
    yield ("DELETE FROM roles WHERE contract = ? AND role = ? AND account = ?",
           (e.contract, a["role"], a["account"]))


def _anchored(e: DecodedEvent) -> Iterator[Statement]:
    a = e.args
    yield (
        "INSERT INTO receipt_roots (batch_index, root, count, from_time, to_time, anchored_by,"
        " block_number, tx_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (a["batchIndex"], a["root"], a["count"], a["fromTime"], a["toTime"], a["anchoredBy"],
         e.block_number, e.tx_hash),
    )


HANDLERS: Mapping[tuple[str, str], Handler] = {
    ("ConsentLedger", "AccessGranted"): _granted,
    ("ConsentLedger", "AccessGrantedBatch"): _granted_batch,
    ("ConsentLedger", "AccessRevoked"): _revoked,
    ("ConsentLedger", "AllAccessRevoked"): _all_revoked,
    ("ConsentLedger", "RecordRegistered"): _record_registered,
    ("ConsentLedger", "RecordSuperseded"): _record_superseded,
    ("ConsentLedger", "RecordBatchRegistered"): _batch_registered,
    ("ConsentLedger", "CareEventLogged"): _care_event,
    ("ConsentLedger", "EmergencyAccessOpened"): _emergency_opened,
    ("ConsentLedger", "EmergencyAccessClosed"): _emergency_closed,
    ("ConsentLedger", "AccessRequested"): _requested,
    ("ConsentLedger", "AccessRequestClosed"): _request_closed,
    ("ConsentLedger", "GuardianAppointed"): _guardian_appointed,
    ("ConsentLedger", "GuardianRemoved"): _guardian_removed,
    ("ConsentLedger", "EmergencyPolicySet"): _policy_set,
    ("ProviderRegistry", "ProviderAdded"): _provider_added,
    ("ProviderRegistry", "ProviderSuspended"): _provider_suspended,
    ("ProviderRegistry", "ProviderReinstated"): _provider_reinstated,
    ("ProviderRegistry", "UmbralKeyRotated"): _key_rotated,
    ("ProviderRegistry", "RoleGranted"): _role_granted,
    ("ProviderRegistry", "RoleRevoked"): _role_revoked,
    ("AccessLog", "RoleGranted"): _role_granted,
    ("AccessLog", "RoleRevoked"): _role_revoked,
    ("AccessLog", "ReceiptRootAnchored"): _anchored,
}
"""(contract, event) → projection handler. Events not listed are kept raw only."""


def apply(cur: Cursor, events: Iterable[DecodedEvent]) -> None:
    """Apply events, in order, to the projections (in the caller's transaction).

    Consecutive identical statements (a run of grants, say) go to SQLite as one
    ``executemany``: the same statements in the same order, far fewer round trips.
    """
    pending: str | None = None
    rows: list[tuple[Any, ...]] = []
    for event in events:
        handler = HANDLERS.get((event.contract, event.name))
        if handler is None:
            continue
        for sql, params in handler(event):
            if sql != pending:
                if pending is not None:
                    cur.executemany(pending, rows)
                pending, rows = sql, []
            rows.append(params)
    if pending is not None:
        cur.executemany(pending, rows)


def projected_events() -> list[tuple[str, str]]:
    """Every (contract, event) with a projection — a test checks none is forgotten."""
    return sorted(HANDLERS)


__all__ = ["HANDLERS", "MAX_INT64", "apply", "projected_events"]
