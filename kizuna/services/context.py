"""``ServiceContext``: the collaborators every use case takes, bundled for the API.

Build one with :meth:`ServiceContext.build` from a connected ``Chain``,
an event index, a content store and the service database; it wires the core parts (access
check, key fragments, receipts, capsule cache) over them. Several contexts -- in one process or
in several -- may share one database: they then behave as several instances of the service
(receipts, key fragments and records are in the database; only caches of immutable data are
per instance).

:func:`open_context` opens all of them from the :class:`~kizuna.config.Settings` (``kizuna serve``,
``kizuna up``, the CLI's local mode) and :func:`close_context` releases them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from kizuna.access.check import AccessCheck, RecordDirectory
from kizuna.chain.connection import Chain, connect
from kizuna.chain.eip712 import Eip712Domain
from kizuna.chain.index.batches import ManifestSource
from kizuna.chain.index.fresh import FreshIndex
from kizuna.chain.index.store import EventIndex
from kizuna.chain.signers import LocalKeySigner, Signer
from kizuna.db import Database
from kizuna.db.schema import record_batches
from kizuna.errors import ContentNotFound, WrongChain
from kizuna.proxy.capsules import CapsuleCache
from kizuna.proxy.kfrags import KfragStore
from kizuna.receipts.request import MAX_CLOCK_SKEW_S, proxy_domain
from kizuna.receipts.store import ReceiptStore
from kizuna.services.quotas import UNLIMITED, StorageQuota
from kizuna.services.refusals import RefusalLimits, RefusalLog
from kizuna.storage.store import ContentStore, open_store

if TYPE_CHECKING:
    from kizuna.config import Settings

DEFAULT_INLINE_MAX_BYTES = 64 * 1024
"""Envelopes up to this size travel inside the read's answer (most FHIR resources do)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceContext:
    """Everything a service function needs, passed explicitly (no globals)."""

    chain: Chain
    index: FreshIndex
    store: ContentStore
    db: Database
    records: RecordDirectory
    access: AccessCheck
    kfrags: KfragStore
    receipts: ReceiptStore
    capsules: CapsuleCache
    refusals: RefusalLog
    """Refused reads (kizuna.services.refusals), written on refusal only."""
    domain: Eip712Domain
    """The proxy's EIP-712 domain (read requests, scope-key statements)."""
    anchor_signer: Signer | None = None
    """Holds ``ANCHOR_ROLE`` on the AccessLog; ``None``: this instance does not anchor."""
    max_clock_skew_s: int = MAX_CLOCK_SKEW_S
    read_inline_max_bytes: int = DEFAULT_INLINE_MAX_BYTES
    """A read answer carries an envelope up to this size itself (0: never)."""
    quota: StorageQuota = UNLIMITED
    """What one wallet may store (kizuna.services.quotas); the API sets it from its settings."""

    @classmethod
    def build(cls, *, chain: Chain, index: FreshIndex | EventIndex, store: ContentStore,
              db: Database, anchor_signer: Signer | None = None,
              max_clock_skew_s: int = MAX_CLOCK_SKEW_S,
              read_inline_max_bytes: int = DEFAULT_INLINE_MAX_BYTES,
              quota: StorageQuota = UNLIMITED,
              refusal_limits: RefusalLimits | None = None) -> ServiceContext:
        fresh = index if isinstance(index, FreshIndex) else FreshIndex(chain, index)
        if fresh.index.manifests is None:  # the batches' manifests this service stored
            fresh.index.use_manifests(stored_manifests(db, store))
        records = RecordDirectory(db)
        domain = proxy_domain(chain_id=chain.chain_id,
                              access_log=chain.deployment.addresses["AccessLog"])
        return cls(chain=chain, index=fresh, store=store, db=db, records=records,
                   access=AccessCheck(chain=chain, index=fresh, db=db, records=records),
                   kfrags=KfragStore(db, domain=domain), receipts=ReceiptStore(db),
                   capsules=CapsuleCache(store), refusals=RefusalLog(db, refusal_limits),
                   domain=domain, anchor_signer=anchor_signer,
                   max_clock_skew_s=max_clock_skew_s,
                   read_inline_max_bytes=read_inline_max_bytes, quota=quota)


def stored_manifests(db: Database, store: ContentStore) -> ManifestSource:
    """The event index's manifest source (kizuna.chain.index.batches): a batch's manifest as
    this service stored it — ``record_batches.manifest_cid``, read from the content store —
    or ``None`` for a batch it has no row (or no content) of. The index trusts none of it
    unless it leads to the on-chain root."""

    def manifest(root: bytes) -> bytes | None:
        with db.read() as conn:
            cid = conn.execute(select(record_batches.c.manifest_cid).where(
                record_batches.c.root == bytes(root))).scalar()
        if cid is None:
            return None
        try:
            with store.get(str(cid)) as stream:
                return stream.read()
        except ContentNotFound:
            return None

    return manifest


def open_context(settings: Settings) -> ServiceContext:
    """Connect the chain (checked), open the event index, the content store and the database
    the settings name, and bundle them (``ServiceContext.build``). Keys come from settings."""
    chain = connect(settings.rpc_url, settings.deployment_file, timeout=settings.rpc_timeout_s)
    if settings.chain_id is not None and settings.chain_id != chain.chain_id:
        raise WrongChain(expected=settings.chain_id, actual=chain.chain_id)
    index_path = settings.index_path.expanduser() if settings.index_path else ":memory:"
    index = EventIndex.for_chain(chain, index_path)
    store = open_store(settings.store_config())
    db = Database.open(settings.database_url)
    anchorer = (LocalKeySigner(settings.anchorer_key.get_secret_value())
                if settings.anchorer_key is not None else None)
    return ServiceContext.build(chain=chain, index=index, store=store, db=db,
                                anchor_signer=anchorer,
                                read_inline_max_bytes=settings.read_inline_max_bytes,
                                quota=StorageQuota(max_records=settings.max_records_per_wallet,
                                                   max_bytes=settings.max_bytes_per_wallet),
                                refusal_limits=RefusalLimits(
                                    per_patient_hour=settings.refused_reads_per_patient_hour,
                                    per_provider_hour=settings.refused_reads_per_provider_hour))


def close_context(ctx: ServiceContext) -> None:
    """Release what :func:`open_context` opened."""
    ctx.store.close()
    ctx.access.close()
    ctx.index.index.close()
    ctx.db.dispose()


__all__ = ["DEFAULT_INLINE_MAX_BYTES", "ServiceContext", "close_context", "open_context",
           "stored_manifests"]
