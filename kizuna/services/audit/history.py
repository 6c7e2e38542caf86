"""The chain's history, replayed from Kizuna's events: the grant slots, revokeAlls and
emergency accesses (``hasAccess`` at any block), records, anchors and the provider registry.

Records come two ways: registered alone (a ``RecordRegistered`` event each) or in a batch (one
``RecordBatchRegistered`` event: the patient, the Merkle root, the count; docs/contracts.md
"Batches"). The chain never holds a batch's leaves, so the history learns them from manifests
(:meth:`ChainHistory.add_manifests`), each trusted only when its leaves rebuild to the root the
chain holds (``BatchManifest.decode(data, root=)``) — where a manifest comes from matters for
availability, never for trust.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from kizuna.batch import BatchManifest
from kizuna.chain.index import EventIndex
from kizuna.chain.index.batches import ManifestSource
from kizuna.chain.index.blocktimes import BlockTimes
from kizuna.chain.index.events import DecodedEvent, EventDecoder
from kizuna.chain.liveness import ConsentReplay, GrantState
from kizuna.chain.models import BlockRef
from kizuna.chain.transactions import node_errors
from kizuna.errors import KizunaError
from kizuna.services.audit.entries import AuditEntry, event_entry
from kizuna.types import Address, Commitment, RecordId, ScopeId

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain


@dataclass(frozen=True, slots=True)
class AccessAt:
    """The ledger's answer to ``hasAccess`` at one block, rebuilt from the event history."""

    allowed: bool
    via: str
    """``"grant"``, ``"emergency"``, or ``""`` when denied."""
    reason: str
    """Why it was allowed or denied (which event, which block)."""
    grant: GrantState | None = None


@dataclass(frozen=True, slots=True)
class Registration:
    """A record as the chain registered it: alone (``event`` is its ``RecordRegistered``) or
    in a batch (``event`` is the batch's ``RecordBatchRegistered``, ``batch_root`` its root,
    ``leaf_index`` the record's place in the manifest that rebuilds to that root)."""

    record_id: RecordId
    patient: Address
    scope_id: ScopeId
    commitment: Commitment
    event: DecodedEvent
    batch_root: bytes | None = None
    leaf_index: int | None = None

    @property
    def block_number(self) -> int:
        return self.event.block_number

    @property
    def tx_hash(self) -> bytes:
        return self.event.tx_hash


_REGISTRY_STATES: Mapping[str, bool] = {
    "ProviderAdded": True, "ProviderSuspended": False, "ProviderReinstated": True,
}
"""Registry events and the provider's ``active`` flag after each."""


class ChainHistory:
    """Every Kizuna event of a deployment, decoded, in chain order, with block times.

    Build with :meth:`from_index` (an index the service keeps: synced to the head first) or
    :meth:`from_chain` (``eth_getLogs`` from the deploy block into a fresh in-memory index: no
    cache trusted). Block timestamps come from the node (``eth_getBlockByNumber``) once per
    block hash: through ``times`` when given (:meth:`from_index` passes the index's
    :attr:`~kizuna.chain.index.EventIndex.block_times`, kept across requests), else through a
    cache of this history's own.
    """

    def __init__(self, chain: Chain, events: Sequence[DecodedEvent], head_block: int, *,
                 times: BlockTimes | None = None, head: BlockRef | None = None) -> None:
        self.chain = chain
        self.events = list(events)
        self.head_block = head_block
        self._block_times = times if times is not None else BlockTimes(
            lambda number: _node_block(chain, number))
        self._hashes: dict[int, bytes] = {e.block_number: e.block_hash for e in self.events}
        """Block number -> the hash this history read it with (the events', the head's)."""
        if head is not None and head.number == head_block:
            self._block_times.remember(head)
            self._hashes[head.number] = head.hash
        self._times: dict[int, int] = {}  # blocks of no event: asked once per history
        self.consent = ConsentReplay()
        """The grant slots, revokeAlls and emergency accesses (kizuna.chain.liveness)."""
        self.records: dict[bytes, DecodedEvent] = {}
        """Records registered alone: record id -> its ``RecordRegistered``."""
        self.batches: dict[bytes, DecodedEvent] = {}
        """Batches: root -> its ``RecordBatchRegistered`` (patient, count)."""
        self.batch_records: dict[tuple[str, bytes], Registration] = {}
        """Records of the batches whose manifests were added: (patient, record id) -> the
        first registration of that id in that patient's batches."""
        self._batched_ids: dict[bytes, Registration] = {}  # record id -> first in any batch
        self.manifests: dict[bytes, BatchManifest | None] = {}
        """Root -> the batch's manifest (checked against the root), or ``None`` when the
        source did not know the batch. Roots not asked yet are absent."""
        self.manifest_problems: dict[bytes, str] = {}
        """Root -> why its manifest could not be used (no bytes where the source keeps them,
        leaves that do not rebuild to the root, another count than the chain's)."""
        self.superseded: dict[bytes, DecodedEvent] = {}
        self.anchors: dict[bytes, DecodedEvent] = {}
        self._registry: dict[str, list[tuple[int, bool]]] = defaultdict(list)
        self._replay()

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def from_index(cls, chain: Chain, index: EventIndex) -> ChainHistory:
        """The history in ``index`` (synced to the node's head first)."""
        head = index.sync()
        return cls(chain, list(_raw_events(index)), head.number, times=index.block_times,
                   head=head)

    @classmethod
    def from_chain(cls, chain: Chain) -> ChainHistory:
        """The history read from the node's logs now, through a fresh in-memory index."""
        with EventIndex.for_chain(chain, ":memory:") as index:
            return cls.from_index(chain, index)

    def _replay(self) -> None:
        for e in self.events:
            a = e.args
            if e.contract == "ConsentLedger":
                self.consent.add(e.name, a, block_number=e.block_number, log_index=e.log_index,
                                 tx_hash=e.tx_hash)
                if e.name == "RecordRegistered":
                    self.records[bytes(a["recordId"])] = e
                elif e.name == "RecordBatchRegistered":
                    self.batches.setdefault(bytes(a["root"]), e)  # the chain refuses a second
                elif e.name == "RecordSuperseded":
                    self.superseded[bytes(a["oldRecordId"])] = e
            elif e.contract == "AccessLog" and e.name == "ReceiptRootAnchored":
                self.anchors[bytes(a["root"])] = e
            elif e.contract == "ProviderRegistry" and e.name in _REGISTRY_STATES:
                self._registry[a["provider"]].append((e.block_number, _REGISTRY_STATES[e.name]))

    # -- batches and registrations ------------------------------------------------------------

    def add_manifests(self, source: ManifestSource) -> None:
        """Learn the records of every batch not asked yet from ``source`` (``None``: it does
        not know the batch; a ``KizunaError``: it lost it): a manifest is kept only when its
        leaves rebuild to the batch's on-chain root and it holds the count the chain
        registered; otherwise :attr:`manifest_problems` says why."""
        for root, event in self.batches.items():
            if root in self.manifests or root in self.manifest_problems:
                continue
            try:
                data = source(root)
                manifest = (BatchManifest.decode(data, root=root) if data is not None
                            else None)
            except KizunaError as exc:  # InputError (not this root's), StorageError, ...
                self.manifest_problems[root] = str(exc)
                continue
            if manifest is not None and manifest.count != int(event.args["count"]):
                self.manifest_problems[root] = (
                    f"the manifest holds {manifest.count} records, the chain registered "
                    f"{int(event.args['count'])}")
                continue
            self.manifests[root] = manifest
            if manifest is None:
                continue
            patient = event.args["patient"]
            for position, leaf in enumerate(manifest.leaves):
                found = Registration(record_id=leaf.record_id, patient=patient,
                                     scope_id=leaf.scope_id, commitment=leaf.commitment,
                                     event=event, batch_root=root, leaf_index=position)
                self.batch_records.setdefault((patient, bytes(leaf.record_id)), found)
                self._batched_ids.setdefault(bytes(leaf.record_id), found)

    def registration(self, record_id: bytes, *,
                     patient: str | None = None) -> Registration | None:
        """How ``record_id`` was registered (alone, or in a batch whose manifest was added);
        with ``patient``, that patient's registration first (a record id is registered alone
        once, but nothing on chain keeps another patient's batch from naming it too)."""
        key = bytes(record_id)
        single = self.records.get(key)
        alone = _single(single) if single is not None else None
        if patient is not None:
            if alone is not None and alone.patient == patient:
                return alone
            mine = self.batch_records.get((patient, key))
            if mine is not None:
                return mine
        return alone if alone is not None else self._batched_ids.get(key)

    def registrations(self, *, patient: str | None = None) -> Iterator[Registration]:
        """Every record registration, in chain order: each ``RecordRegistered``, and the
        records of each batch whose manifest was added, in manifest order."""
        for e in self.events:
            if e.contract != "ConsentLedger" or (patient is not None
                                                 and e.args.get("patient") != patient):
                continue
            if e.name == "RecordRegistered" and self.records.get(
                    bytes(e.args["recordId"])) is e:
                yield _single(e)
            elif e.name == "RecordBatchRegistered":
                root = bytes(e.args["root"])
                manifest = self.manifests.get(root) if self.batches.get(root) is e else None
                if manifest is None:
                    continue
                for position, leaf in enumerate(manifest.leaves):
                    yield Registration(record_id=leaf.record_id, patient=e.args["patient"],
                                       scope_id=leaf.scope_id, commitment=leaf.commitment,
                                       event=e, batch_root=root, leaf_index=position)

    # -- block times -------------------------------------------------------------------------

    def block_time(self, number: int) -> int:
        """The timestamp of block ``number``. A block holding an event (or the head) is
        looked up by the hash this history read it with, so a time kept from an earlier request
        is reused and a reorged block's is never served; any other block is asked of the node
        once per history."""
        block_hash = self._hashes.get(number)
        if block_hash is not None:
            return self._block_times.time(number, block_hash)
        known = self._times.get(number)
        if known is None:
            known = self._block_times.time(number)
            self._times[number] = known
        return known

    # -- the access rule at a block ----------------------------------------------------------

    def access_at(self, patient: Address, provider: Address, scope_id: ScopeId,
                  block_number: int) -> AccessAt:
        """``hasAccess(patient, provider, scope)`` as the ledger answered at ``block_number``.

        The state after every event of blocks ``<= block_number``, at that block's timestamp
        ``t``: a live grant (kizuna.chain.liveness) or an emergency access open until ``> t``.
        """
        now = self.block_time(block_number)
        at = self.consent.grant_at(patient, provider, scope_id, block_number, now=now)
        grant = at.grant
        if at.live and grant is not None:
            return AccessAt(True, "grant", f"grant of block {grant.block_number} live "
                            f"until {grant.expires_at}", grant)
        if grant is not None and grant.expires_at is not None and grant.expires_at <= now:
            reason = (f"grant of block {grant.block_number} expired at {grant.expires_at} "
                      f"(block time {now})")
        elif grant is not None and grant.expires_at is not None:
            reason = (f"grant of block {grant.block_number} was ended by revokeAll in "
                      f"block {at.revoked_all_block}")
        elif grant is not None:
            reason = f"grant revoked in block {grant.block_number}"
        else:
            reason = "no grant was ever made for this scope"
        emergency_until = self.consent.emergency_until(patient, provider, block_number)
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
        found = self.consent.denials_after(patient, provider, scope_id, after_block)
        return [(b, tx) for b, tx in found if self.block_time(b) <= until_time]

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
                                            "anchoredBy", "account", "sender")):
                continue
            entry = event_entry(e, self.block_time)
            if entry is None:
                continue
            if since is not None and entry.time < since:
                continue
            if until is not None and entry.time > until:
                continue
            out.append(entry)
        return out


def _node_block(chain: Chain, number: int) -> BlockRef:
    """Block ``number`` as the node has it now (its hash and time)."""
    with node_errors(chain.decoder):  # a node gone away: NodeUnreachable (503)
        block = chain.w3.eth.get_block(number)
    return BlockRef(number=int(block["number"]), hash=bytes(block["hash"]),
                    timestamp=int(block["timestamp"]))


def _single(event: DecodedEvent) -> Registration:
    a = event.args
    return Registration(record_id=RecordId(bytes(a["recordId"])), patient=a["patient"],
                        scope_id=ScopeId(bytes(a["scopeId"])),
                        commitment=Commitment(bytes(a["commitment"])), event=event)


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


def load_history(chain: Chain, *, index: EventIndex | None = None, from_chain: bool = False,
                 manifests: ManifestSource | None = None) -> ChainHistory:
    """:meth:`ChainHistory.from_chain` when asked (or without an index), else from ``index``;
    with ``manifests``, the records of the batches too (:meth:`ChainHistory.add_manifests`)."""
    history = (ChainHistory.from_chain(chain) if from_chain or index is None
               else ChainHistory.from_index(chain, index))
    if manifests is not None:
        history.add_manifests(manifests)
    return history
