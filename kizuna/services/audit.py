"""The auditor's use cases: the log decoded from the chain, and three verifications.

An auditor trusts the chain and nothing else. Everything here is rebuilt from Kizuna's events
(an :class:`~kizuna.chain.index.EventIndex`, or — ``from_chain=True`` — straight from
``eth_getLogs`` into a fresh in-memory index, for an auditor who trusts no cache) and checked
against what the service's database and content store claim:

1. :func:`verify_receipts` — every read receipt is under a root anchored in ``AccessLog``: each
   batch's Merkle tree is rebuilt from the receipts (leaves recomputed from the signed request,
   never taken from the stored ``leaf`` column), the root must be anchored with the same count
   and a time range ending no earlier than its receipts (a receipt committed late, before the
   batch's raised ``fromTime``, is counted ``late``), every receipt's proof verifies in Python
   (and a sample through ``AccessLog.verifyReceipt``), and the provider's EIP-712 signature
   recovers to the provider. A receipt dropped, added or altered makes its batch fail, and says how.
2. :func:`verify_access` — each read had a live grant (or an open emergency access) at the
   head block the service decided at, evaluated from the event history (grants, revokes,
   ``revokeAll`` with its same-block rule, expiries, emergency open/close) — no archive node.
3. :func:`verify_content` — the stored ciphertext of each record hashes (SHA-256, streamed) to
   the commitment of its ``RecordRegistered`` event.

Each returns a :class:`CheckReport` (counts, and every :class:`Finding` with what failed and
why). :func:`audit` runs the three. The hot path of (1) is written for 100,000 receipts in a
few seconds: leaves and EIP-712 digests are hashed with fixed layouts (the constants come from
:mod:`kizuna.receipts.request`; a test pins that both paths agree) and signers are checked
by :class:`kizuna.signatures.SignerCheck`.
"""

from __future__ import annotations

import bisect
import gc
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from sqlalchemy import select

from kizuna.chain.index import EventIndex
from kizuna.chain.index.events import DecodedEvent, EventDecoder
from kizuna.chain.transactions import node_errors
from kizuna.crypto.commitment import CommitmentHasher
from kizuna.crypto.merkle import MerkleTree, keccak
from kizuna.crypto.merkle import verify as verify_proof
from kizuna.db import schema
from kizuna.errors import ChainError, ContentNotFound, InputError, StorageError
from kizuna.receipts.request import (
    MAX_CLOCK_SKEW_S,
    READ_RECEIPT_TYPEHASH,
    READ_REQUEST_TYPEHASH,
    proxy_domain,
)
from kizuna.signatures import SignerCheck, UnrecoverableSignature
from kizuna.storage.unixfs import ContentIntegrityError
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.db import Database
    from kizuna.storage.store import ContentStore


STALE_HEAD_SLACK_S = 15
"""A revocation mined this many seconds (block time) or more before a read was served must be
in the head block the read was decided at; closer than that, the read may have been in flight."""


# =============================================================================================
# The log
# =============================================================================================


class EntryKind(StrEnum):
    """What one log entry records (one per Kizuna event; ``READ`` per stored receipt)."""

    RECORD_REGISTERED = "record-registered"
    RECORD_SUPERSEDED = "record-superseded"
    ACCESS_GRANTED = "access-granted"
    ACCESS_REVOKED = "access-revoked"
    ALL_ACCESS_REVOKED = "all-access-revoked"
    EMERGENCY_POLICY_SET = "emergency-policy-set"
    EMERGENCY_OPENED = "emergency-opened"
    EMERGENCY_CLOSED = "emergency-closed"
    ACCESS_REQUESTED = "access-requested"
    REQUEST_CLOSED = "request-closed"
    GUARDIAN_APPOINTED = "guardian-appointed"
    GUARDIAN_REMOVED = "guardian-removed"
    GUARDIAN_ACTED = "guardian-acted"
    CARE_EVENT = "care-event"
    RECEIPT_ROOT_ANCHORED = "receipt-root-anchored"
    PROVIDER_EVENT = "provider-registry"
    READ = "read"
    REFUSED_READ = "refused-read"
    REFUSED_READS_SUPPRESSED = "refused-reads-suppressed"


_REGISTRY_STATES: Mapping[str, bool] = {
    "ProviderAdded": True, "ProviderSuspended": False, "ProviderReinstated": True,
}
"""Registry events and the provider's ``active`` flag after each."""

_KINDS: Mapping[str, EntryKind] = {
    "RecordRegistered": EntryKind.RECORD_REGISTERED,
    "RecordSuperseded": EntryKind.RECORD_SUPERSEDED,
    "AccessGranted": EntryKind.ACCESS_GRANTED,
    "AccessGrantedBatch": EntryKind.ACCESS_GRANTED,
    "AccessRevoked": EntryKind.ACCESS_REVOKED,
    "AllAccessRevoked": EntryKind.ALL_ACCESS_REVOKED,
    "EmergencyPolicySet": EntryKind.EMERGENCY_POLICY_SET,
    "EmergencyAccessOpened": EntryKind.EMERGENCY_OPENED,
    "EmergencyAccessClosed": EntryKind.EMERGENCY_CLOSED,
    "AccessRequested": EntryKind.ACCESS_REQUESTED,
    "AccessRequestClosed": EntryKind.REQUEST_CLOSED,
    "GuardianAppointed": EntryKind.GUARDIAN_APPOINTED,
    "GuardianRemoved": EntryKind.GUARDIAN_REMOVED,
    "GuardianActed": EntryKind.GUARDIAN_ACTED,
    "CareEventLogged": EntryKind.CARE_EVENT,
    "ReceiptRootAnchored": EntryKind.RECEIPT_ROOT_ANCHORED,
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log. Fields an event does not carry are ``None`` / empty."""

    kind: EntryKind
    event: str
    """The contract event's name (``"read"`` for a receipt)."""
    block_number: int
    log_index: int
    tx_hash: bytes
    """The event's transaction; for a read, the anchoring transaction (empty while pending)."""
    time: int
    """Block timestamp (unix seconds); for a read, when the service served it."""
    patient: Address | None = None
    provider: Address | None = None
    scope_ids: tuple[ScopeId, ...] = ()
    record_id: RecordId | None = None
    flags: frozenset[str] = frozenset()
    """``flagged-for-review`` (emergency authority), ``superseded``, ``pending`` (a read whose
    receipt is not anchored yet)."""
    expires_at: int | None = None
    """A grant's expiry, an emergency access's or a request's end, a guardian's ``until``."""
    actor: Address | None = None
    """Who acted when it is not the patient: a guardian, the closer, the anchoring service."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """The remaining event arguments (commitment, reason code, batch count, ...)."""


@dataclass(frozen=True, slots=True)
class GrantState:
    """What ``(patient, provider, scope)``'s grant slot held after one event."""

    block_number: int
    log_index: int
    tx_hash: bytes
    expires_at: int | None
    """``None``: cleared by ``revoke``."""


@dataclass(frozen=True, slots=True)
class AccessAt:
    """The ledger's answer to ``hasAccess`` at one block, rebuilt from the event history."""

    allowed: bool
    via: str
    """``"grant"``, ``"emergency"``, or ``""`` when denied."""
    reason: str
    """Why it was allowed or denied (which event, which block)."""
    grant: GrantState | None = None


def _address_or_none(value: Any) -> Address | None:
    if isinstance(value, str) and int(value, 16):
        return to_checksum_address(value)
    return None


class ChainHistory:
    """Every Kizuna event of a deployment, decoded, in chain order, with block times.

    Build with :meth:`from_index` (an index the service keeps: synced to the head first) or
    :meth:`from_chain` (``eth_getLogs`` from the deploy block into a fresh in-memory index: no
    cache trusted). Block timestamps come from the node (``eth_getBlockByNumber``, cached).
    """

    def __init__(self, chain: Chain, events: Sequence[DecodedEvent], head_block: int) -> None:
        self.chain = chain
        self.events = list(events)
        self.head_block = head_block
        self._times: dict[int, int] = {}
        self._grants: dict[tuple[str, str, bytes], list[GrantState]] = defaultdict(list)
        self._revoke_all: dict[tuple[str, str], list[tuple[int, bytes]]] = defaultdict(list)
        self._emergency: dict[tuple[str, str], list[tuple[int, int, int, bytes]]] = (
            defaultdict(list))
        self.records: dict[bytes, DecodedEvent] = {}
        self.superseded: dict[bytes, DecodedEvent] = {}
        self.anchors: dict[bytes, DecodedEvent] = {}
        self._registry: dict[str, list[tuple[int, bool]]] = defaultdict(list)
        self._replay()

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def from_index(cls, chain: Chain, index: EventIndex) -> ChainHistory:
        """The history in ``index`` (synced to the node's head first)."""
        head = index.sync()
        return cls(chain, list(_raw_events(index)), head.number)

    @classmethod
    def from_chain(cls, chain: Chain) -> ChainHistory:
        """The history read from the node's logs now, through a fresh in-memory index."""
        with EventIndex.for_chain(chain, ":memory:") as index:
            return cls.from_index(chain, index)

    def _replay(self) -> None:
        for e in self.events:
            a = e.args
            if e.contract == "ConsentLedger":
                if e.name == "AccessGranted":
                    self._grants[(a["patient"], a["provider"], bytes(a["scopeId"]))].append(
                        GrantState(e.block_number, e.log_index, e.tx_hash, int(a["expiresAt"])))
                elif e.name == "AccessGrantedBatch":
                    for scope in a["scopeIds"]:
                        self._grants[(a["patient"], a["provider"], bytes(scope))].append(
                            GrantState(e.block_number, e.log_index, e.tx_hash,
                                       int(a["expiresAt"])))
                elif e.name == "AccessRevoked":
                    self._grants[(a["patient"], a["provider"], bytes(a["scopeId"]))].append(
                        GrantState(e.block_number, e.log_index, e.tx_hash, None))
                elif e.name == "AllAccessRevoked":
                    pair = (a["patient"], a["provider"])
                    self._revoke_all[pair].append((e.block_number, e.tx_hash))
                    self._emergency[pair].append((e.block_number, e.log_index, 0, e.tx_hash))
                elif e.name == "EmergencyAccessOpened":
                    self._emergency[(a["patient"], a["provider"])].append(
                        (e.block_number, e.log_index, int(a["until"]), e.tx_hash))
                elif e.name == "EmergencyAccessClosed":
                    self._emergency[(a["patient"], a["provider"])].append(
                        (e.block_number, e.log_index, 0, e.tx_hash))
                elif e.name == "RecordRegistered":
                    self.records[bytes(a["recordId"])] = e
                elif e.name == "RecordSuperseded":
                    self.superseded[bytes(a["oldRecordId"])] = e
            elif e.contract == "AccessLog" and e.name == "ReceiptRootAnchored":
                self.anchors[bytes(a["root"])] = e
            elif e.contract == "ProviderRegistry" and e.name in _REGISTRY_STATES:
                self._registry[a["provider"]].append((e.block_number, _REGISTRY_STATES[e.name]))

    # -- block times -------------------------------------------------------------------------

    def block_time(self, number: int) -> int:
        """The timestamp of block ``number`` (asked once per block)."""
        known = self._times.get(number)
        if known is None:
            with node_errors(self.chain.decoder):  # a node gone away: NodeUnreachable (503)
                known = int(self.chain.w3.eth.get_block(number)["timestamp"])
            self._times[number] = known
        return known

    # -- the access rule at a block ----------------------------------------------------------

    def access_at(self, patient: Address, provider: Address, scope_id: ScopeId,
                  block_number: int) -> AccessAt:
        """``hasAccess(patient, provider, scope)`` as the ledger answered at ``block_number``.

        The state after every event of blocks ``<= block_number``, at that block's timestamp:
        a stored grant with ``expiresAt > t`` made in a block strictly after the pair's last
        ``revokeAll`` (same block: revokeAll wins), or an emergency access open until ``> t``.
        """
        now = self.block_time(block_number)
        pair = (patient, provider)
        grant: GrantState | None = None
        states = self._grants.get((patient, provider, bytes(scope_id)), [])
        at = bisect.bisect_right([s.block_number for s in states], block_number)
        if at:
            grant = states[at - 1]
        revokes = [b for b, _ in self._revoke_all.get(pair, []) if b <= block_number]
        revoked_all = revokes[-1] if revokes else 0
        emergencies = [x for x in self._emergency.get(pair, []) if x[0] <= block_number]
        emergency_until = emergencies[-1][2] if emergencies else 0
        if grant is not None and grant.expires_at is not None:
            if grant.expires_at <= now:
                reason = (f"grant of block {grant.block_number} expired at {grant.expires_at} "
                          f"(block time {now})")
            elif grant.block_number <= revoked_all:
                reason = (f"grant of block {grant.block_number} was ended by revokeAll in "
                          f"block {revoked_all}")
            else:
                return AccessAt(True, "grant", f"grant of block {grant.block_number} live "
                                f"until {grant.expires_at}", grant)
        elif grant is not None:
            reason = f"grant revoked in block {grant.block_number}"
        else:
            reason = "no grant was ever made for this scope"
        if emergency_until > now:
            return AccessAt(True, "emergency", f"emergency access open until {emergency_until}",
                            grant)
        return AccessAt(False, "", reason, grant)

    def provider_at(self, provider: Address, block_number: int) -> bool | None:
        """The provider's registry status after block ``block_number``: ``None`` when not
        registered yet, else whether it was active (not suspended)."""
        states = [active for block, active in self._registry.get(provider, [])
                  if block <= block_number]
        return states[-1] if states else None

    def denials_between(self, patient: Address, provider: Address, scope_id: ScopeId,
                        after_block: int, until_time: int) -> list[tuple[int, bytes]]:
        """Revokes / revokeAlls / emergency closes of the pair after ``after_block`` in blocks
        whose time is at most ``until_time``: (block, tx hash) of each."""
        found: list[tuple[int, bytes]] = []
        for state in self._grants.get((patient, provider, bytes(scope_id)), []):
            if state.expires_at is None and state.block_number > after_block:
                found.append((state.block_number, state.tx_hash))
        for block, tx in self._revoke_all.get((patient, provider), []):
            if block > after_block:
                found.append((block, tx))
        return [(b, tx) for b, tx in sorted(found) if self.block_time(b) <= until_time]

    def grant_history(self) -> Iterator[tuple[tuple[str, str, bytes], list[GrantState]]]:
        """Every (patient, provider, scope) with its grant slot's states, in chain order."""
        yield from self._grants.items()

    def revoke_all_blocks(self, patient: str, provider: str) -> list[tuple[int, bytes]]:
        return list(self._revoke_all.get((patient, provider), []))

    # -- the log -----------------------------------------------------------------------------

    def entries(self, *, patient: str | None = None, provider: str | None = None,
                since: int | None = None, until: int | None = None) -> list[AuditEntry]:
        """The decoded log, oldest first, for a patient and/or a provider and/or a time range
        (``since <= time <= until``, block timestamps)."""
        want_patient = to_checksum_address(patient) if patient else None
        want_provider = to_checksum_address(provider) if provider else None
        out: list[AuditEntry] = []
        for e in self.events:
            # filter on the arguments first: block times are asked only for what is kept
            if want_patient is not None and e.args.get("patient") != want_patient:
                continue
            if want_provider is not None and want_provider not in (
                    e.args.get(k) for k in ("provider", "guardian", "closedBy", "actor",
                                            "anchoredBy")):
                continue
            entry = _entry(e, self.block_time)
            if entry is None:
                continue
            if since is not None and entry.time < since:
                continue
            if until is not None and entry.time > until:
                continue
            out.append(entry)
        return out


def _raw_events(index: EventIndex) -> Iterator[DecodedEvent]:
    """Every raw log the index holds, decoded with *all* arguments, in chain order."""
    decoder = EventDecoder(index.source.contracts)
    with index._lock:  # the index's connection is shared; hold its lock while reading
        rows = index.db.execute(
            "SELECT block_number, log_index, block_hash, tx_hash, address, topics, data "
            "FROM raw_logs ORDER BY block_number, log_index").fetchall()
    for block_number, log_index, block_hash, tx_hash, address, topics, data in rows:
        raw = bytes(topics)
        decoded = decoder.decode_raw({
            "address": address, "topics": [raw[i:i + 32] for i in range(0, len(raw), 32)],
            "data": bytes(data), "blockNumber": int(block_number),
            "blockHash": bytes(block_hash), "transactionHash": bytes(tx_hash),
            "logIndex": int(log_index),
        })
        if decoded is not None:
            yield decoded


def _entry(e: DecodedEvent, block_time: Callable[[int], int]) -> AuditEntry | None:
    a = dict(e.args)
    if e.contract == "ProviderRegistry":
        kind = EntryKind.PROVIDER_EVENT
    else:
        found = _KINDS.get(e.name)
        if found is None:
            return None
        kind = found
    patient = a.pop("patient", None)
    provider = a.pop("provider", None)
    scopes: tuple[ScopeId, ...] = ()
    if "scopeId" in a:
        scopes = (ScopeId(bytes(a.pop("scopeId"))),)
    elif "scopeIds" in a:
        scopes = tuple(ScopeId(bytes(s)) for s in a.pop("scopeIds"))
    record = a.pop("recordId", None) or a.pop("newRecordId", None)
    flags: set[str] = set()
    if a.pop("flaggedForReview", False):
        flags.add("flagged-for-review")
    expires = None
    for key in ("expiresAt", "until", "openUntil"):
        if key in a:
            expires = int(a.pop(key))
    actor = None
    for key in ("guardian", "closedBy", "actor", "anchoredBy"):
        if key in a:
            actor = _address_or_none(a.pop(key))
    return AuditEntry(
        kind=kind, event=e.name, block_number=e.block_number, log_index=e.log_index,
        tx_hash=e.tx_hash, time=block_time(e.block_number),
        patient=_address_or_none(patient), provider=_address_or_none(provider), scope_ids=scopes,
        record_id=RecordId(bytes(record)) if record is not None else None,
        flags=frozenset(flags), expires_at=expires, actor=actor,
        details={k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in a.items()},
    )


def full_log(chain: Chain, *, index: EventIndex | None = None, from_chain: bool = False,
             database: Database | None = None, patient: str | None = None,
             provider: str | None = None, since: int | None = None,
             until: int | None = None) -> list[AuditEntry]:
    """The audit log for a patient, a provider and/or a time range, oldest first.

    From ``index`` (synced first), or from the node's logs when ``from_chain`` (or no index)
    is given. With ``database``, each stored read receipt is a ``READ`` entry too (its
    ``tx_hash`` is the anchoring transaction; ``pending`` flag while not anchored).
    """
    history = load_history(chain, index=index, from_chain=from_chain)
    entries = history.entries(patient=patient, provider=provider, since=since, until=until)
    if database is not None:
        want_patient = to_checksum_address(patient) if patient else None
        want_provider = to_checksum_address(provider) if provider else None
        for receipt in load_receipts(database):
            if want_patient is not None and receipt.patient != want_patient:
                continue
            if want_provider is not None and receipt.provider != want_provider:
                continue
            if since is not None and receipt.served_at < since:
                continue
            if until is not None and receipt.served_at > until:
                continue
            entries.append(read_entry(receipt, history))
        entries.extend(refused_entries(database, patient=want_patient, provider=want_provider,
                                       since=since, until=until))
        # A read sits after the events of the head block it was decided at.
        entries.sort(key=lambda x: (x.block_number, x.log_index if x.log_index >= 0 else 1 << 40,
                                    x.time))
    return entries


def load_history(chain: Chain, *, index: EventIndex | None = None,
                 from_chain: bool = False) -> ChainHistory:
    """:meth:`ChainHistory.from_chain` when asked (or without an index), else from ``index``."""
    if from_chain or index is None:
        return ChainHistory.from_chain(chain)
    return ChainHistory.from_index(chain, index)


def read_entry(receipt: ReceiptRow, history: ChainHistory) -> AuditEntry:
    """A stored receipt as a ``READ`` log entry."""
    anchor = history.anchors.get(receipt.batch_root) if receipt.batch_root else None
    return AuditEntry(
        kind=EntryKind.READ, event="read", block_number=receipt.head_block,
        log_index=-1, tx_hash=anchor.tx_hash if anchor is not None else b"",
        time=receipt.served_at, patient=receipt.patient, provider=receipt.provider,
        scope_ids=(receipt.scope_id,), record_id=receipt.record_id,
        flags=frozenset() if anchor is not None else frozenset({"pending"}),
        details={"requestId": "0x" + receipt.request_id.hex(), "issuedAt": receipt.issued_at,
                 "batchRoot": "0x" + receipt.batch_root.hex() if receipt.batch_root else None},
    )


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


# =============================================================================================
# Reports
# =============================================================================================


@dataclass(frozen=True, slots=True)
class Finding:
    """One failed check: which ``check`` (e.g. ``receipt.signature``), about which ``subject``
    (a request id, a root or a record id, ``0x`` hex), and why."""

    check: str
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The result of one verification: how many things were checked, which passed, and every
    failure with its reason. ``counts`` holds check-specific figures."""

    name: str
    checked: int
    passed: int
    failures: tuple[Finding, ...]
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def failed_checks(self) -> set[str]:
        """The names of the checks that failed (e.g. ``{"batch.root", "receipt.leaf"}``)."""
        return {f.check for f in self.failures}

    def about(self, subject: str | bytes) -> list[Finding]:
        """The findings about one subject (a request id, root or record id)."""
        key = "0x" + subject.hex() if isinstance(subject, bytes) else subject
        return [f for f in self.failures if f.subject == key]


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The three verifications together."""

    receipts: CheckReport
    access: CheckReport
    content: CheckReport

    @property
    def ok(self) -> bool:
        return self.receipts.ok and self.access.ok and self.content.ok


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


# =============================================================================================
# Receipts as stored
# =============================================================================================


@dataclass(frozen=True, slots=True)
class SignedFields:
    """The fields of the provider's signed ``ReadRequest``, as parsed from ``request_json``."""

    provider: str
    patient: str
    record_id: bytes
    request_id: bytes
    issued_at: int


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    """A row of the service's ``receipts`` table, with the signed request parsed."""

    seq: int
    request_id: bytes
    provider: Address
    patient: Address
    record_id: RecordId
    scope_id: ScopeId
    request_json: str
    signature: bytes
    leaf: bytes
    served_at: int
    head_block: int
    batch_root: bytes | None
    leaf_index: int | None
    issued_at: int
    """From the signed request; -1 when ``request_json`` is unreadable."""
    signed: SignedFields | None = None
    """``None`` when ``request_json`` is unreadable (:func:`verify_receipts` reports it)."""


_RECEIPTS_SQL = (
    "SELECT seq, request_id, provider, patient, record_id, scope_id, request_json, signature,"
    " leaf, served_at, head_block, batch_root, leaf_index FROM receipts ORDER BY seq"
)
"""Plain SQL (portable): the driver's rows as they are, without per-column result processing
-- a third of the time of reading 100,000 receipts."""


def _signed(request_json: str) -> SignedFields | None:
    try:
        m = json.loads(request_json)
        fields = SignedFields(provider=str(m["provider"]), patient=str(m["patient"]),
                              record_id=bytes.fromhex(m["recordId"][2:]),
                              request_id=bytes.fromhex(m["requestId"][2:]),
                              issued_at=int(m["issuedAt"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if (len(fields.record_id) != 32 or len(fields.request_id) != 32
            or not 0 <= fields.issued_at < 2**64 or len(fields.provider) != 42
            or len(fields.patient) != 42):
        return None
    return fields


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while 100,000s of small acyclic objects are made
    (reference counting frees them anyway; full collections walking the heap cost ~10 %)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_receipts(database: Database) -> list[ReceiptRow]:
    """Every receipt row, in ``seq`` order, with its signed request parsed."""
    with _gc_paused():
        return _load_receipts(database)


def _load_receipts(database: Database) -> list[ReceiptRow]:
    out: list[ReceiptRow] = []
    append = out.append
    with database.read() as connection:
        rows = connection.exec_driver_sql(_RECEIPTS_SQL).fetchall()
    for r in rows:
        signed = _signed(r[6])
        append(ReceiptRow(
            seq=int(r[0]), request_id=bytes(r[1]), provider=r[2], patient=r[3],
            record_id=RecordId(bytes(r[4])), scope_id=ScopeId(bytes(r[5])),
            request_json=r[6], signature=bytes(r[7]), leaf=bytes(r[8]),
            served_at=int(r[9]), head_block=int(r[10]),
            batch_root=bytes(r[11]) if r[11] is not None else None,
            leaf_index=int(r[12]) if r[12] is not None else None,
            issued_at=signed.issued_at if signed is not None else -1, signed=signed))
    return out


# =============================================================================================
# 1. Receipts under anchored roots
# =============================================================================================


def _word(address_hex: str) -> bytes:
    return bytes(12) + bytes.fromhex(address_hex[2:])


class _Signatures:
    """Checks that EIP-712 digests are signed by given addresses, fast: the rule and the
    cached-key fast path are :class:`kizuna.signatures.SignerCheck`'s; this turns its
    answers into finding text."""

    def __init__(self) -> None:
        self._check = SignerCheck()

    def problem(self, signature: bytes, digest: bytes, address: str) -> str | None:
        expected = bytes.fromhex(address[2:])
        try:
            signer = self._check.signer(digest, signature, expected)
        except UnrecoverableSignature:
            return "the signature recovers to no key"
        except InputError as error:
            return f"malformed signature ({error.reason})"
        if signer != expected:
            return (f"signed by {to_checksum_address(signer)}, not by the provider "
                    f"{to_checksum_address(address)}")
        return None


class _FastReceipts:
    """Leaf, EIP-712 digest and signer of a receipt with fixed layouts (see the module doc)."""

    def __init__(self, chain_id: int, access_log: str) -> None:
        self.separator = proxy_domain(chain_id=chain_id,
                                      access_log=to_checksum_address(access_log)).separator()
        self.signatures = _Signatures()

    def check(self, receipt: ReceiptRow) -> tuple[bytes | None, str | None, str | None]:
        """(recomputed leaf, field problem, signature problem) of one receipt."""
        m = receipt.signed
        if m is None:
            return None, "the signed request JSON is unreadable or malformed", None
        problems = []
        if m.provider.lower() != receipt.provider.lower():
            problems.append(f"provider column {receipt.provider} ≠ signed {m.provider}")
        if m.patient.lower() != receipt.patient.lower():
            problems.append(f"patient column {receipt.patient} ≠ signed {m.patient}")
        if m.record_id != receipt.record_id:
            problems.append("record_id column differs from the signed recordId")
        if m.request_id != receipt.request_id:
            problems.append("request_id column differs from the signed requestId")
        signature = receipt.signature
        head = _word(m.provider) + _word(m.patient) + m.record_id + m.request_id \
            + m.issued_at.to_bytes(32, "big")
        leaf = keccak(keccak(
            READ_RECEIPT_TYPEHASH + head + keccak(signature)
            + receipt.served_at.to_bytes(32, "big") + receipt.head_block.to_bytes(32, "big")))
        digest = keccak(b"\x19\x01" + self.separator + keccak(READ_REQUEST_TYPEHASH + head))
        return (leaf, "; ".join(problems) or None,
                self.signatures.problem(signature, digest, m.provider.lower()))


def verify_receipts(chain: Chain, database: Database, history: ChainHistory, *,
                    onchain_sample: int = 8, all_proofs: bool = True,
                    receipts: Sequence[ReceiptRow] | None = None,
                    seed: int | None = None) -> CheckReport:
    """Check 1: every receipt is under an anchored root, intact, and signed by its provider.

    ``onchain_sample`` random receipts of the batches that passed are also proven through
    ``AccessLog.verifyReceipt`` (one ``eth_call`` each). ``all_proofs=False`` skips the
    per-receipt Python proofs: the root rebuilt from every recomputed leaf and equal to the
    anchored one already covers each leaf (the benchmark reports both).
    """
    with _gc_paused():
        return _verify_receipts(chain, database, history, onchain_sample=onchain_sample,
                                all_proofs=all_proofs, receipts=receipts, seed=seed)


def _verify_receipts(chain: Chain, database: Database, history: ChainHistory, *,
                     onchain_sample: int, all_proofs: bool,
                     receipts: Sequence[ReceiptRow] | None,
                     seed: int | None) -> CheckReport:
    rows = list(receipts) if receipts is not None else load_receipts(database)
    fast = _FastReceipts(chain.chain_id, chain.deployment.addresses["AccessLog"])
    failures: list[Finding] = []
    bad: set[int] = set()
    leaves: dict[int, bytes] = {}

    def fail(check: str, subject: bytes, reason: str, seq: int | None = None) -> None:
        failures.append(Finding(check, _hex(subject), reason))
        if seq is not None:
            bad.add(seq)

    for r in rows:
        leaf, field_problem, signature_problem = fast.check(r)
        if leaf is None:
            fail("receipt.request", r.request_id, field_problem or "unreadable", r.seq)
            continue
        leaves[r.seq] = leaf
        if field_problem:
            fail("receipt.fields", r.request_id, field_problem, r.seq)
        if signature_problem:
            fail("receipt.signature", r.request_id, signature_problem, r.seq)
        if leaf != r.leaf:
            fail("receipt.leaf", r.request_id, "the stored leaf is not the hash of the stored "
                 "receipt fields (receipt altered)", r.seq)

    batches: dict[bytes, list[ReceiptRow]] = defaultdict(list)
    unanchored: list[ReceiptRow] = []
    for r in rows:
        if r.batch_root is None:
            unanchored.append(r)
        else:
            batches[r.batch_root].append(r)

    proofs_checked = late = batch_of_checked = 0
    anchored_ok: list[tuple[bytes, MerkleTree, list[ReceiptRow]]] = []
    for root, members in batches.items():
        members.sort(key=lambda x: (x.leaf_index if x.leaf_index is not None else -1, x.seq))
        anchor = history.anchors.get(root)
        if anchor is None:
            for r in members:
                bad.add(r.seq)
            fail("batch.not_anchored", root, f"no ReceiptRootAnchored event for this root "
                 f"({len(members)} receipts claim it)")
            continue
        a = anchor.args
        # The contract's own record (one eth_call per batch): the events came through a cache
        # or a node's log index; batchOf is the storage the contract checks proofs against.
        stored = chain.access_log.batch_of(root)
        batch_of_checked += 1
        if stored is None or (stored.count, stored.from_time, stored.to_time) != (
                int(a["count"]), int(a["fromTime"]), int(a["toTime"])):
            fail("batch.batch_of", root, f"AccessLog.batchOf answers {stored} but the event "
                 f"says count {a['count']}, {a['fromTime']}..{a['toTime']}")
        indices = [r.leaf_index for r in members]
        expected = list(range(len(members)))
        if indices != expected:
            missing = sorted(set(range(int(a["count"]))) - {i for i in indices if i is not None})
            dupes = sorted({i for i in indices if i is not None and indices.count(i) > 1})
            fail("batch.leaf_index", root, f"leaf indices are not 0..{len(members) - 1}: "
                 f"missing {missing[:10]} (receipts dropped?), repeated {dupes[:10]} "
                 "(receipts added?)")
        if int(a["count"]) != len(members):
            what = "dropped" if len(members) < int(a["count"]) else "added"
            fail("batch.count", root, f"anchored count {a['count']} but {len(members)} "
                 f"receipts in the database (receipts {what})")
        built = [leaves.get(r.seq) for r in members]
        if any(x is None for x in built):
            fail("batch.root", root, "a receipt of the batch cannot be rebuilt")
            bad.update(r.seq for r in members)
            continue
        tree = MerkleTree.build([x for x in built if x is not None])
        if tree.root != root:
            fail("batch.root", root, "the Merkle root rebuilt from the receipts is not the "
                 "anchored root (a receipt was dropped, added or altered)")
            bad.update(r.seq for r in members)
            continue
        times = [r.served_at for r in members]
        if max(times) > int(a["toTime"]):
            fail("batch.time_range", root, f"receipts served until {max(times)}, after the "
                 f"anchored range's end {a['toTime']}")
            bad.update(r.seq for r in members)
        # A receipt committed late (another instance's clock, a slow commit) lands in a batch
        # whose fromTime was raised to the previous batch's end (kizuna.receipts.batching):
        # its servedAt is covered by the root, so it is reported as late, not as a failure.
        late += sum(1 for t in times if t < int(a["fromTime"]))
        if all_proofs:
            for position, r in enumerate(members):
                proofs_checked += 1
                if not verify_proof(tree.proof(position), root, tree.levels[0][position]):
                    fail("receipt.proof", r.request_id, "the Merkle proof does not verify",
                         r.seq)
        anchored_ok.append((root, tree, members))

    claimed = set(batches)
    for root, anchor in history.anchors.items():
        if root not in claimed:
            fail("batch.missing", root, f"anchored on-chain (batch {anchor.args['batchIndex']}, "
                 f"{anchor.args['count']} receipts) but no receipt in the database claims it "
                 "(receipts dropped)")

    # The service's own record of where it anchored each batch must be the chain's.
    with database.read() as connection:
        recorded = connection.execute(select(schema.receipt_batches.c.root,
                                             schema.receipt_batches.c.tx_hash)).all()
    for root_value, tx_value in recorded:
        root, tx = bytes(root_value), bytes(tx_value) if tx_value is not None else None
        if tx is None or tx == bytes(32):  # pending, or anchored with the tx not found
            continue
        anchor = history.anchors.get(root)
        if anchor is None:
            fail("batch.db_record", root, f"the service records it anchored by {_hex(tx)}, "
                 "but the chain has no such anchor")
        elif anchor.tx_hash != tx:
            fail("batch.db_record", root, f"the service records it anchored by {_hex(tx)}, "
                 f"the chain by {_hex(anchor.tx_hash)}")

    last_anchored_seq = max((r.seq for m in batches.values() for r in m), default=0)
    last_to_time = max((int(e.args["toTime"]) for e in history.anchors.values()), default=0)
    pending = 0
    for r in unanchored:
        if r.seq > last_anchored_seq and r.served_at >= last_to_time:
            pending += 1
        else:
            fail("receipt.unanchored", r.request_id, f"not in any batch although served at "
                 f"{r.served_at}, before receipts that are anchored (added or withheld)", r.seq)

    sampled = 0
    if onchain_sample and anchored_ok:
        rng = random.Random(seed)
        flat = [(root, tree, i) for root, tree, members in anchored_ok
                for i in range(len(members))]
        for root, tree, position in rng.sample(flat, min(onchain_sample, len(flat))):
            sampled += 1
            member = next(m for rt, _, m in anchored_ok if rt == root)[position]
            if not chain.access_log.verify_receipt(root, tree.levels[0][position],
                                                   tree.proof(position)):
                fail("receipt.onchain_proof", member.request_id,
                     "AccessLog.verifyReceipt answered false", member.seq)

    checked = len(rows)
    return CheckReport(
        name="receipts", checked=checked, passed=checked - len(bad) - pending,
        failures=tuple(failures),
        counts={"batches": len(batches), "anchored_batches": len(history.anchors),
                "pending": pending, "late": late, "proofs_checked": proofs_checked,
                "onchain_proofs_checked": sampled, "batch_of_checked": batch_of_checked},
    )


# =============================================================================================
# 2. A live grant (or open emergency access) at each read
# =============================================================================================


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

    ``eth_call_sample``: for that many random receipts, also ask the node for
    ``hasAccess`` at the head block (``eth_call`` with a historical block tag) and compare it
    with the event replay (``access.eth_call_mismatch``); a node without that state (not an
    archive node) is counted ``eth_call_unavailable``, not failed.
    """
    failures: list[Finding] = []
    by_grant = by_emergency = 0
    rows = list(receipts)
    cross_checked = unavailable = 0
    for r in random.Random(seed).sample(rows, min(eth_call_sample, len(rows))):
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
            failures.append(Finding("access.eth_call_mismatch", _hex(r.request_id),
                                    f"hasAccess at block {r.head_block} is {on_chain} on the "
                                    f"node but {replayed.allowed} from the events "
                                    f"({replayed.reason})"))
    bad = 0
    for r in rows:
        problems: list[tuple[str, str]] = []
        record = history.records.get(bytes(r.record_id))
        if record is None:
            problems.append(("access.record", "the record id is not registered on-chain"))
        else:
            owner = record.args["patient"]
            if owner != r.patient:
                problems.append(("access.record", f"the record belongs to {owner}, not to the "
                                 f"receipt's patient {r.patient}"))
            if bytes(record.args["scopeId"]) != bytes(r.scope_id):
                problems.append(("access.record", "the receipt's scope is not the record's "
                                 "registered scope"))
            if record.block_number > r.head_block:
                problems.append(("access.record", f"the record was registered in block "
                                 f"{record.block_number}, after the read's head block "
                                 f"{r.head_block}"))
        if r.head_block > history.head_block:
            problems.append(("access.head_block", f"head block {r.head_block} is beyond the "
                             f"chain head {history.head_block}"))
            failures.extend(Finding(c, _hex(r.request_id), why) for c, why in problems)
            bad += 1
            continue
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
        else:
            missed = history.denials_between(r.patient, r.provider, r.scope_id, r.head_block,
                                             r.served_at - stale_head_slack)
            if missed:
                block, tx = missed[0]
                problems.append(("access.stale_head", f"decided at head block {r.head_block} "
                                 f"although a revocation was mined in block {block} "
                                 f"(tx {_hex(tx)}) at least {stale_head_slack} s before the "
                                 "read was served"))
            elif decision.via == "grant":
                by_grant += 1
            else:
                by_emergency += 1
        if problems:
            bad += 1
            failures.extend(Finding(c, _hex(r.request_id), why) for c, why in problems)
    return CheckReport(name="access", checked=len(rows), passed=len(rows) - bad,
                       failures=tuple(failures),
                       counts={"by_grant": by_grant, "by_emergency": by_emergency,
                               "eth_call_checked": cross_checked,
                               "eth_call_unavailable": unavailable})


# =============================================================================================
# 3. Content commitments
# =============================================================================================


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
        subject = _hex(record_id)
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


# =============================================================================================
# All three
# =============================================================================================


def audit(chain: Chain, database: Database, store: ContentStore, *,
          index: EventIndex | None = None, from_chain: bool = False,
          onchain_sample: int = 8, eth_call_sample: int = 8) -> AuditReport:
    """Run the three verifications against one history of the chain (``onchain_sample``
    receipts also proven by ``AccessLog.verifyReceipt``, ``eth_call_sample`` access decisions
    also asked of the node at their head block)."""
    history = load_history(chain, index=index, from_chain=from_chain)
    receipts = load_receipts(database)
    return AuditReport(
        receipts=verify_receipts(chain, database, history, receipts=receipts,
                                 onchain_sample=onchain_sample),
        access=verify_access(history, receipts, eth_call_sample=eth_call_sample),
        content=verify_content(history, database, store),
    )


__all__ = [
    "STALE_HEAD_SLACK_S",
    "AccessAt",
    "AuditEntry",
    "AuditReport",
    "ChainHistory",
    "CheckReport",
    "EntryKind",
    "Finding",
    "GrantState",
    "ReceiptRow",
    "SignedFields",
    "audit",
    "full_log",
    "load_history",
    "load_receipts",
    "read_entry",
    "refused_entries",
    "verify_access",
    "verify_content",
    "verify_receipts",
]
