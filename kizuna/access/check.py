"""The access check: the only place a :class:`~kizuna.access.grant.VerifiedGrant` is made.

``AccessCheck.check_read(provider=, record_id=)`` decides "may this provider read this record
now?" from the chain, never from a cache (design.md, trust model rule 3):

1. the record: the service database's ``records`` row (patient, scope, CID) -- an unknown id
   is ``NotFoundError``;
2. the head: the event index is synced to the node's latest block (``FreshIndex.head``); the
   decision is made *at that block number*, never at an older one (``require_fresh``);
3. the ledger and the registry at that block, in one JSON-RPC batch (one HTTP round trip on
   a real node): ``accessExpiry`` (a live grant or an open emergency access), ``grantOf`` and
   ``emergencyAccessUntil`` (which of the two authorises), ``recordOf`` (the record's owner and
   whether it was superseded) — or, for a record registered in a batch (the row has a
   ``batch_root``), ``batchRecordOf(root, recordId)`` in its place (the batch's owner and
   whether the owner superseded this record) —, ``providerOf`` (the provider's Umbral key and
   status);
4. the rules: the record's on-chain owner is the patient the database names; the record is not
   superseded; the row's scope and commitment are what the chain registered (for a record
   registered alone, its ``RecordRegistered`` event in the index; for a batch record, the row's
   Merkle proof leads from its leaf — record id, scope, commitment — to the batch's root);
   the provider is registered and *active* (a suspended provider reads nothing, whatever
   grants it holds); ``accessExpiry`` is in the future of the head block;
5. only then ``kizuna.access.grant._issue``.

A denial is an ``AccessDenied`` subclass saying why: :class:`NoGrant`, :class:`GrantRevoked`,
:class:`GrantExpired`, :class:`RecordSuperseded`, :class:`ProviderNotRegistered`,
:class:`ProviderSuspended`, :class:`WrongPatient`, :class:`BatchProofInvalid`. The reason is
diagnosed after the decision (two more views), so the hot path of an allowed read stays one
batch — for a batch record too (its proof is checked locally, once per record).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from web3.providers.rpc import HTTPProvider
from web3.types import BlockIdentifier

from kizuna.access.grant import VerifiedGrant, _issue
from kizuna.access.headrounds import HeadRounds
from kizuna.batch import BatchLeaf, proof_leads_to, unpack_proof
from kizuna.chain.index.store import StaleRead
from kizuna.chain.models import BlockRef, RecordStatus
from kizuna.chain.reverts import abi_type_string
from kizuna.chain.rpc import LeanRpc
from kizuna.chain.transactions import node_errors
from kizuna.crypto.pre import MalformedCryptoData, UmbralPublicKey
from kizuna.db import Database
from kizuna.db.records import load_record
from kizuna.errors import (  # the refusals: in the one tree, so an API client rebuilds them
    AccessDenied,
    BatchProofInvalid,
    ChainError,
    ContractReverted,
    GrantExpired,
    GrantRevoked,
    InputError,
    NoGrant,
    NotFoundError,
    ProviderNotRegistered,
    ProviderSuspended,
    RecordSuperseded,
    WrongPatient,
)
from kizuna.types import Address, RecordId, checksum_address
from kizuna.wire.records import RecordInfo

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.chain.index.fresh import FreshIndex


def batch_proof_holds(record: RecordInfo) -> bool:
    """Whether a batch record's row is in its batch: its proof leads from the leaf (record id,
    scope, commitment, as the row says) to the row's ``batch_root``. False for a row without
    a batch, without a proof or with a malformed one. Whether that root is the patient's, on
    chain, is the caller's question (``batchRecordOf``)."""
    if record.batch_root is None or record.proof is None:
        return False
    try:
        leaf = BatchLeaf(record.record_id, record.scope_id, record.commitment)
        return proof_leads_to(record.batch_root, leaf, unpack_proof(record.proof))
    except InputError:
        return False


def registered_status(chain: Chain, record: RecordInfo, *,
                      block: BlockIdentifier = "latest") -> RecordStatus | None:
    """What the chain says of a service row, registered alone (``recordOf``) or in a batch
    (``batchRecordOf`` of its root, with its proof checked: a row whose proof fails is not a
    record of that batch); ``None`` when it is not registered. Outside the read path (the
    access check asks the same in its batch of views): superseding, retries of uploads."""
    if record.batch_root is None:
        return chain.ledger.record_of(record.record_id, block=block)
    status = chain.ledger.batch_record_of(record.batch_root, record.record_id, block=block)
    if status is None or not batch_proof_holds(record):
        return None
    return RecordStatus(record_id=record.record_id, patient=status.patient,
                        registered_at=status.registered_at, superseded=status.superseded)


class RecordDirectory:
    """``records`` rows by id, cached in memory (a row never changes once written)."""

    def __init__(self, db: Database, *, max_cached: int = 100_000) -> None:
        self.db = db
        self.max_cached = max_cached
        self._cache: dict[bytes, RecordInfo] = {}
        self._lock = threading.Lock()

    def get(self, record_id: RecordId) -> RecordInfo:
        """The record; ``NotFoundError`` when the service does not know it."""
        key = bytes(record_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        info = load_record(self.db, key)
        if info is None:
            raise NotFoundError(f"no record 0x{key.hex()} is known to this service")
        with self._lock:
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            self._cache[key] = info
        return info


class ProviderKeys:
    """Providers' Umbral keys from the registry at a given block (no cross-block cache: the
    access check reads them in its batch; this is for kfrag uploads and diagnostics)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def key_of(self, provider: Address, *, block: BlockIdentifier = "latest",
               require_active: bool = False) -> UmbralPublicKey:
        entry = self.chain.registry.provider_of(checksum_address(provider), block=block)
        if entry is None:
            raise ProviderNotRegistered(f"{provider} is not in the provider registry")
        if require_active and not entry.active:
            raise ProviderSuspended(f"{provider} is suspended in the provider registry")
        try:
            return UmbralPublicKey.from_bytes(entry.umbral_public_key)
        except MalformedCryptoData:
            raise ProviderNotRegistered(
                f"{provider}'s registered Umbral key is not a valid public key") from None


@dataclass(frozen=True, slots=True)
class _Function:
    """A view's selector and ABI types, prepared once (web3's ``encode_abi`` costs ~1 ms)."""

    address: str
    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @classmethod
    def of(cls, address: str, abi: list[dict[str, Any]], name: str) -> _Function:
        entry = next(e for e in abi if e.get("type") == "function" and e["name"] == name)
        inputs = tuple(abi_type_string(i) for i in entry["inputs"])
        outputs = tuple(abi_type_string(o) for o in entry["outputs"])
        selector = bytes(function_signature_to_4byte_selector(f"{name}({','.join(inputs)})"))
        return cls(address, name, selector, inputs, outputs)


def _encode_args(types: tuple[str, ...], args: tuple[Any, ...]) -> bytes:
    """ABI-encode static ``address`` / ``bytes32`` arguments word by word (what every view of
    the check takes; ~10x cheaper than eth_abi's validating encoder), eth_abi otherwise."""
    if not all(t in ("address", "bytes32") for t in types):
        return abi_encode(list(types), list(args))
    words = []
    for kind, value in zip(types, args, strict=True):
        if kind == "address":
            raw = bytes.fromhex(value[2:])
            if len(raw) != 20:
                raise ValueError(f"not an address: {value!r}")
            words.append(bytes(12) + raw)
        else:
            if len(value) != 32:
                raise ValueError("a bytes32 argument must be 32 bytes")
            words.append(bytes(value))
    return b"".join(words)


@dataclass(frozen=True, slots=True)
class _View:
    function: _Function
    args: tuple[Any, ...]
    may_revert: bool = False
    """A revert answers ``None`` (``providerOf`` reverts for an unknown provider)."""

    def params(self, block: int) -> list[Any]:
        data = self.function.selector + _encode_args(self.function.inputs, self.args)
        return [{"to": self.function.address, "data": "0x" + data.hex()}, hex(block)]

    def decode(self, raw: str | bytes) -> tuple[Any, ...]:
        data = bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw)
        return tuple(abi_decode(list(self.function.outputs), data))


@lru_cache(maxsize=4096)
def _registered_key(raw: bytes) -> UmbralPublicKey | None:
    """A provider's registered Umbral key, parsed (None: not a valid key). Cached: a point
    decompression per read was a visible share of it, and the bytes come from the chain."""
    try:
        return UmbralPublicKey.from_bytes(raw)
    except MalformedCryptoData:
        return None


@dataclass(frozen=True, slots=True)
class _ChainState:
    access_until: int
    grant_expires_at: int
    grant_block: int
    grant_live: bool
    emergency_until: int
    record_patient: Address | None
    record_superseded: bool
    provider_key: bytes | None
    provider_active: bool


class _StateAtHead:
    """Chain states read at one head (number, hash), by (record id, provider). Only the newest
    head is kept: a thread still deciding at an older head reads the chain itself. The head
    and its states are swapped as one tuple, so a reader never pairs a head with another
    head's states."""

    MAX_ENTRIES = 50_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[tuple[int, bytes], dict[tuple[bytes, str], _ChainState]] = (
            (-1, b""), {})

    def get(self, head: BlockRef, key: tuple[bytes, str]) -> _ChainState | None:
        at, states = self._current
        return states.get(key) if at == (head.number, head.hash) else None

    def put(self, head: BlockRef, key: tuple[bytes, str], state: _ChainState) -> None:
        with self._lock:
            at, states = self._current
            if at != (head.number, head.hash):
                if head.number < at[0]:
                    return  # decided at an older head: not worth keeping
                states = {}
                self._current = ((head.number, head.hash), states)
            if len(states) < self.MAX_ENTRIES:
                states[key] = state


class AccessCheck:
    """The access decision. Needs the chain, a :class:`FreshIndex` over it and the database."""

    def __init__(self, *, chain: Chain, index: FreshIndex, db: Database,
                 records: RecordDirectory | None = None) -> None:
        self.chain = chain
        self.index = index
        self.db = db
        self.records = records if records is not None else RecordDirectory(db)
        self.provider_keys = ProviderKeys(chain)
        self._confirmed: set[bytes] = set()
        self._confirmed_lock = threading.Lock()
        self._at_head: _StateAtHead = _StateAtHead()
        self._head_rounds: HeadRounds[BlockRef] = HeadRounds(self._ask_latest)
        provider = chain.w3.provider
        url = str(provider.endpoint_uri) if isinstance(provider, HTTPProvider) else ""
        self._rpc = LeanRpc(url) if url and LeanRpc.usable(url) else None
        self._batching = self._rpc is not None
        ledger, registry = chain.deployment.addresses["ConsentLedger"], \
            chain.deployment.addresses["ProviderRegistry"]
        self._fn = {name: _Function.of(ledger, chain.abis["ConsentLedger"], name)
                    for name in ("accessExpiry", "grantOf", "emergencyAccessUntil", "recordOf",
                                 "batchRecordOf")}
        self._fn["providerOf"] = _Function.of(registry, chain.abis["ProviderRegistry"],
                                              "providerOf")

    def arrival(self) -> int:
        """Mark that a read has arrived: pass it as ``check_read(arrived=)`` and the read is
        decided at a head asked for *after this moment* (never before), possibly by a request
        another read sent meanwhile (:class:`~kizuna.access.headrounds.HeadRounds`). Take it
        when the read reaches the service, before it waits for a thread."""
        return self._head_rounds.ticket()

    def check_read(self, *, provider: Address, record_id: RecordId,
                   patient: Address | None = None, arrived: int | None = None) -> VerifiedGrant:
        """A ``VerifiedGrant`` for ``provider`` to read ``record_id`` now, or an ``AccessDenied``
        saying why (``NotFoundError`` for an unknown record). ``arrived``: the read's
        :meth:`arrival` (default: this call)."""
        provider = checksum_address(provider)
        record = self.records.get(record_id)
        if patient is not None and checksum_address(patient) != record.patient:
            raise WrongPatient(f"record 0x{bytes(record_id).hex()} is not {patient}'s")
        head = self._fresh_head(self._head_rounds.ticket() if arrived is None else arrived)
        state = self._state(record, provider, head)
        return self._decide(record, provider, head, state)

    # -- reading the chain at the head --------------------------------------------------------

    def _fresh_head(self, arrived: int) -> BlockRef:
        """The head to decide at: asked after ``arrived`` and never older than what the index
        has seen. When the index is at the node's head already (same number and hash) that is
        the index's own head, read just now: one query, nothing it has seen is newer.
        Otherwise the index catches up (or rolls back a reorg) first; another thread may sync
        it past the head this one reached, and then this one takes a newer head, asked after
        now (a few tries; a chain that outruns them all is a ``StaleRead``)."""
        for _ in range(4):
            latest = self._latest(arrived)
            known = self.index.index.head
            if known is not None and known.number == latest.number and known.hash == latest.hash:
                return known
            head = self.index.head()
            try:
                self.index.index.require_fresh(head.number)
            except StaleRead:
                arrived = self._head_rounds.ticket()
                continue
            return head
        head = self.index.head()
        self.index.index.require_fresh(head.number)
        return head

    def _latest(self, arrived: int) -> BlockRef:
        """The node's latest block, asked after ``arrived``; concurrent reads share the
        request (:class:`~kizuna.access.headrounds.HeadRounds`)."""
        return self._head_rounds.get(arrived)

    def close(self) -> None:
        """Close the connections to the node (a later check opens a new one)."""
        if self._rpc is not None:
            self._rpc.close()

    def _ask_latest(self) -> BlockRef:
        if self._rpc is not None:
            raw = self._rpc.call("eth_getBlockByNumber", ["latest", False])
            if raw is None:
                raise ChainError("the node has no latest block")
            return BlockRef(number=int(raw["number"], 16), hash=bytes.fromhex(raw["hash"][2:]),
                            timestamp=int(raw["timestamp"], 16))
        with node_errors(self.chain.decoder):
            block = self.chain.w3.eth.get_block("latest")
        return BlockRef(number=int(block["number"]), hash=bytes(block["hash"]),
                        timestamp=int(block["timestamp"]))

    def _views(self, record: RecordInfo, provider: Address) -> list[_View]:
        fn = self._fn
        scope = bytes(record.scope_id)
        return [
            _View(fn["accessExpiry"], (record.patient, provider, scope)),
            _View(fn["grantOf"], (record.patient, provider, scope)),
            _View(fn["emergencyAccessUntil"], (record.patient, provider)),
            # A batch record has no recordOf entry: its batch's owner and whether that owner
            # superseded it, in the same batch of calls.
            _View(fn["recordOf"], (bytes(record.record_id),)) if record.batch_root is None
            else _View(fn["batchRecordOf"], (bytes(record.batch_root), bytes(record.record_id))),
            _View(fn["providerOf"], (provider,), may_revert=True),
        ]

    def _call_all(self, views: Sequence[_View], block: int) -> list[tuple[Any, ...] | None]:
        if self._rpc is not None:
            answers = self._rpc.batch([("eth_call", v.params(block)) for v in views])
            results: list[tuple[Any, ...] | None] = []
            for view, answer in zip(views, answers, strict=True):
                if "error" in answer and view.may_revert:
                    results.append(None)
                    continue
                if "error" in answer or answer.get("result") is None:
                    raise ChainError(f"{view.function.name} failed at block {block}: "
                                     f"{answer.get('error')}")
                results.append(view.decode(answer["result"]))
            return results
        out: list[tuple[Any, ...] | None] = []
        for view in views:
            call, at = view.params(block)
            try:
                with node_errors(self.chain.decoder):
                    raw = self.chain.w3.eth.call(call, block_identifier=int(at, 16))
            except ContractReverted:
                if not view.may_revert:
                    raise
                out.append(None)
                continue
            out.append(view.decode(bytes(raw)))
        return out

    def _state(self, record: RecordInfo, provider: Address, head: BlockRef) -> _ChainState:
        """The ledger and registry views at ``head``. The state at a block hash never changes,
        so reads of one (record, provider) at the same head share one round of calls; a new
        head (or a reorg: same number, other hash) starts afresh."""
        key = (bytes(record.record_id), provider)
        cached = self._at_head.get(head, key)
        if cached is not None:
            return cached
        state = self._read_state(record, provider, head)
        self._at_head.put(head, key, state)
        return state

    def _read_state(self, record: RecordInfo, provider: Address, head: BlockRef) -> _ChainState:
        results = self._call_all(self._views(record, provider), head.number)
        fixed = [r for r in results[:4] if r is not None]
        if len(fixed) != 4:
            raise ChainError("a ledger view reverted during the access check")
        (until,), (g_expires, g_block, g_live), (emergency,), registered = fixed
        # recordOf: (patient, registeredAt, superseded); batchRecordOf: (patient, registeredAt,
        # count, superseded). The zero address: not registered (an unknown id or root).
        owner, superseded = registered[0], registered[-1]
        entry = results[4]
        key = bytes(entry[0]) if entry is not None else None
        active = bool(entry[2]) if entry is not None else False
        owner_address = checksum_address(owner)
        return _ChainState(
            access_until=int(until), grant_expires_at=int(g_expires), grant_block=int(g_block),
            grant_live=bool(g_live), emergency_until=int(emergency),
            record_patient=None if int(owner_address, 16) == 0 else owner_address,
            record_superseded=bool(superseded), provider_key=key,
            provider_active=bool(active))

    # -- the rules ----------------------------------------------------------------------------

    def _decide(self, record: RecordInfo, provider: Address, head: BlockRef,
                state: _ChainState) -> VerifiedGrant:
        rid = f"0x{bytes(record.record_id).hex()}"
        batch = (f" (its batch 0x{bytes(record.batch_root).hex()})"
                 if record.batch_root is not None else "")
        if state.record_patient is None:
            raise NotFoundError(f"record {rid}{batch} is not registered on-chain")
        if state.record_patient != record.patient:
            raise WrongPatient(f"record {rid}{batch} belongs to {state.record_patient} "
                               f"on-chain, not {record.patient}")
        if state.record_superseded:
            raise RecordSuperseded(f"record {rid} was superseded by a newer version")
        self._confirm_row(record)
        if state.provider_key is None:
            raise ProviderNotRegistered(f"{provider} is not in the provider registry")
        if not state.provider_active:
            # A suspension ends every read at once, whatever grants the patients made: the
            # registrar's word on the provider comes before any grant (design.md, rule 6).
            raise ProviderSuspended(f"{provider} is suspended in the provider registry (at "
                                    f"block {head.number}): no record is served to it")
        if state.access_until <= head.timestamp:
            raise self._why_not(record, provider, head, state)
        by_emergency_only = not state.grant_live
        key = _registered_key(state.provider_key)
        if key is None:
            raise ProviderNotRegistered(
                f"{provider}'s registered Umbral key is not a valid public key")
        return _issue(patient=record.patient, grantee=provider, grantee_key=key,
                      record_id=record.record_id, scope_id=record.scope_id,
                      expires_at=state.access_until, checked_at_block=head.number,
                      head_timestamp=head.timestamp, by_emergency=by_emergency_only)

    def _confirm_row(self, record: RecordInfo) -> None:
        """The database row's scope and commitment must be what the chain registered (the
        ``RecordRegistered`` event, in the index synced to the head; for a batch record, the
        row's proof leading to its batch's root, whose owner the caller checked on chain): a
        row naming another scope would let a grant of that scope open this record. Checked
        once per record (a registered record's scope never changes), then remembered."""
        key = bytes(record.record_id)
        if key in self._confirmed:
            return
        if record.batch_root is not None:
            # Needs no index: the leaf and proof are the row's, the root is on chain (and the
            # index may still be waiting for the batch's manifest).
            if not batch_proof_holds(record):
                raise BatchProofInvalid(
                    f"record 0x{key.hex()}'s proof does not lead to its batch root "
                    f"0x{bytes(record.batch_root).hex()}: the service's row (scope, "
                    "commitment) is not what the patient registered: refused")
            self._remember(key)
            return
        index = self.index.index
        with index._lock:
            row = index.db.execute(
                "SELECT scope_id, commitment, patient FROM records WHERE record_id = ?",
                (key,)).fetchone()
        rid = f"0x{key.hex()}"
        if row is None:
            raise AccessDenied(f"record {rid} is registered on-chain but not in the event "
                               "index yet: retry")
        if (bytes(row[0]) != bytes(record.scope_id) or bytes(row[1]) != bytes(record.commitment)
                or checksum_address(row[2]) != record.patient):
            raise WrongPatient(f"the service's row for record {rid} disagrees with the chain "
                               "(scope, commitment or owner): refused")
        self._remember(key)

    def _remember(self, key: bytes) -> None:
        with self._confirmed_lock:
            if len(self._confirmed) >= 1_000_000:
                self._confirmed.clear()
            self._confirmed.add(key)

    def _why_not(self, record: RecordInfo, provider: Address, head: BlockRef,
                 state: _ChainState) -> AccessDenied:
        who = f"{provider} on scope 0x{bytes(record.scope_id).hex()[:16]}... of {record.patient}"
        if state.grant_block == 0:
            revoked_all = self.chain.ledger.revoked_all_block(record.patient, provider,
                                                               block=head.number)
            revoked_at = self._revoked_at(record, provider, head)
            if revoked_at is not None:
                return GrantRevoked(f"the grant to {who} was revoked (block {revoked_at})")
            if revoked_all:
                return GrantRevoked(f"all access of {provider} to {record.patient}'s records "
                                    f"was revoked (block {revoked_all})")
            return NoGrant(f"no grant to {who} (at block {head.number})")
        if state.grant_expires_at <= head.timestamp:
            return GrantExpired(f"the grant to {who} expired at {state.grant_expires_at}")
        return GrantRevoked(f"the grant to {who} was revoked (revokeAll, at block "
                            f"{head.number})")

    def _revoked_at(self, record: RecordInfo, provider: Address, head: BlockRef) -> int | None:
        """The block of the last ``AccessRevoked`` of this grant, if the node can tell (a revoke
        deletes the grant on-chain, so only its event says "revoked" rather than "never")."""
        event = self.chain.ledger.contract.events.AccessRevoked
        try:
            with node_errors(self.chain.decoder):
                logs = event.get_logs(
                    from_block=int(self.chain.deployment.deploy_block), to_block=head.number,
                    argument_filters={"patient": record.patient, "provider": provider})
        except (ChainError, ValueError):
            return None  # e.g. a public node refusing a long range: the reason stays "no grant"
        blocks = [int(log["blockNumber"]) for log in logs
                  if bytes(log["args"]["scopeId"]) == bytes(record.scope_id)]
        return max(blocks) if blocks else None


__all__ = [
    "AccessCheck",
    "BatchProofInvalid",
    "GrantExpired",
    "GrantRevoked",
    "NoGrant",
    "ProviderKeys",
    "ProviderNotRegistered",
    "ProviderSuspended",
    "RecordDirectory",
    "RecordInfo",
    "RecordSuperseded",
    "WrongPatient",
    "batch_proof_holds",
    "registered_status",
]
