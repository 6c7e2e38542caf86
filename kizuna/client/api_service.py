"""``ApiService``: the :class:`~kizuna.client.service.KizunaService` over the HTTP API.

The role commands (``kizuna patient|provider ...``) and any other client run the same
:class:`~kizuna.client.patient.PatientClient` / :class:`~kizuna.client.provider.ProviderClient`
code against the API as in-process (:class:`~kizuna.client.service.LocalService`). This adapter
puts the service calls on the API's routes (:class:`~kizuna.client.http.ApiClient`, signed in
with SIWE) and takes what is *public chain state* from the participant's own node connection
(:class:`~kizuna.client.service.ChainDocuments`: domains, nonces for typed data, provider keys
from the registry; plus the registered commitment a read is checked against and grant lists
from the chain's events) — the service's word is not needed, and not trusted, for those.

A call naming a ``patient`` other than the signed-in address acts for that patient: the API
allows it only to a live guardian of theirs (on chain), and answers 403 otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO, cast

from kizuna.batch import BatchManifest
from kizuna.chain.eip712 import SignedAction, TypedData
from kizuna.chain.models import Grant, Provider
from kizuna.client.chainview import (
    BatchManifests,
    registered_commitment,
    registered_commitments,
)
from kizuna.client.http import ApiClient
from kizuna.client.service import ChainDocuments, Envelope
from kizuna.crypto import pre
from kizuna.receipts.request import ReadRequest
from kizuna.storage.store import ContentStream
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId, checked_address
from kizuna.wire.batches import BatchInfo, StagedEnvelope, StagedInfo
from kizuna.wire.care import ACCESS_REQUEST, CareMessage, InboxKey, inbox_key_typed_data
from kizuna.wire.consent import Confirmed, GrantResult, RevokeResult
from kizuna.wire.inbox import InboxItem, ReadEntry
from kizuna.wire.onchain import SentTransaction
from kizuna.wire.reads import AttemptedReads, ReadGrant
from kizuna.wire.records import PART_SIZE, RecordInfo
from kizuna.wire.scopes import ScopeKeys, scope_keys_typed_data

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.chain.index.store import EventIndex
    from kizuna.chain.rpc import ChainReader
    from kizuna.crypto.wallet_keys import KeyDerivationDomain

UPLOAD_IN_PARTS_ABOVE = PART_SIZE
"""Envelopes larger than one part (8 MiB) whose size is known go as chunked uploads."""


def _known_size(envelope: object) -> int | None:
    """The bytes left in ``envelope`` when they can be known without reading it: bytes, or a
    seekable file (from its position to its end); ``None`` for a stream or an iterable."""
    if isinstance(envelope, bytes):
        return len(envelope)
    seekable = getattr(envelope, "seekable", None)
    if seekable is None or not seekable():
        return None
    file = cast("BinaryIO", envelope)
    here = file.tell()
    end = file.seek(0, os.SEEK_END)
    file.seek(here)
    return end - here


class ApiService(ChainDocuments):
    """:class:`~kizuna.client.service.KizunaService` over the API plus the own node."""

    def __init__(self, api: ApiClient, chain: Chain | Callable[[], Chain], *,
                 reader: ChainReader | None = None) -> None:
        """``chain`` may be a callable that connects on first use; ``reader`` (the own node
        over :class:`~kizuna.chain.rpc.ChainReader`) then answers what a read of one's own
        record asks of the chain — the key domain and the registered commitment — so that
        read never loads web3 (issue 12's ``cli_get_s``)."""
        self.api = api
        self._chain = chain
        self._reader = reader
        self._index: EventIndex | None = None
        self._blocks: dict[bytes, int] = {}  # record id -> registration block (service's hint)
        # batch manifests from the service, each kept once it rebuilds to its on-chain root
        self._manifests = BatchManifests(api.batch_manifest)

    @property
    def chain(self) -> Chain:  # type: ignore[override]  # connected when first needed
        if callable(self._chain):
            self._chain = self._chain()
        return self._chain

    def key_domain(self) -> KeyDerivationDomain:
        if self._reader is not None:
            from kizuna.client.keys import derivation_domain

            return derivation_domain(self._reader)
        return super().key_domain()

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        if self._reader is not None:
            self._reader.close()
        self.api.close()

    def _events(self) -> EventIndex:
        """The chain's events, indexed in memory from the own node (synced on each use)."""
        if self._index is None:
            # The index (SQLAlchemy) is loaded only by the calls that need the chain's events,
            # never by a client's start or a record's read.
            from kizuna.chain.index.store import EventIndex

            self._index = EventIndex.for_chain(self.chain, ":memory:")
        self._index.sync()
        return self._index

    def _for(self, patient: Address) -> Address | None:
        """``patient`` when it is not the signed-in participant (a guardian acting), else
        None (the API takes the patient from the session)."""
        session = self.api.session
        if session is not None and checked_address("patient", patient) == session.address:
            return None
        return patient

    # -- keys --------------------------------------------------------------------------------

    def scope_epoch(self, patient: Address, scope_id: ScopeId) -> int:
        """From the own node's events (the same index query the service runs): which key a
        new record is encrypted to is not taken from the service's word."""
        return self._events().scope_epoch(checked_address("patient", patient), scope_id)

    def scope_keys_statement(self, *, patient: Address, scope_id: ScopeId,
                             delegating_key: bytes, verifying_key: bytes,
                             epoch: int = 0) -> TypedData:
        return scope_keys_typed_data(
            self.proxy_domain(), patient=patient, scope_id=scope_id,
            delegating_key=pre.UmbralPublicKey.from_bytes(delegating_key),
            verifying_key=pre.UmbralPublicKey.from_bytes(verifying_key), epoch=epoch)

    def register_scope_keys(self, *, patient: Address, scope_id: ScopeId,
                            delegating_key: bytes, verifying_key: bytes,
                            signature: bytes, epoch: int = 0) -> ScopeKeys:
        self.api.register_scope_keys(scope_id=scope_id, delegating_key=delegating_key,
                                     verifying_key=verifying_key, signature=signature,
                                     epoch=epoch)
        return ScopeKeys(patient=patient, scope_id=scope_id,
                         delegating_key=pre.UmbralPublicKey.from_bytes(delegating_key),
                         verifying_key=pre.UmbralPublicKey.from_bytes(verifying_key),
                         epoch=epoch)

    def inbox_key_statement(self, *, patient: Address, public_key: bytes) -> TypedData:
        return inbox_key_typed_data(self.proxy_domain(), patient=patient,
                                         public_key=public_key)

    def publish_inbox_key(self, *, patient: Address, public_key: bytes,
                          signature: bytes) -> InboxKey:
        return self.api.publish_inbox_key(public_key=public_key, signature=signature)

    def inbox_key_of(self, patient: Address) -> InboxKey:
        return self.api.inbox_key_of(patient)

    # -- records -----------------------------------------------------------------------------

    def upload_record(self, *, patient: Address, record_id: RecordId, scope_id: ScopeId,
                      envelope: Envelope, registration: SignedAction | SentTransaction,
                      supersedes: RecordId | None = None,
                      epoch: int = 0) -> RecordInfo:
        body = bytes(envelope) if isinstance(envelope, memoryview | bytearray) else envelope
        size = _known_size(body)
        if size is not None and size > UPLOAD_IN_PARTS_ABOVE:
            # Large: a chunked upload, resumable part by part (a dropped connection costs one
            # part, not the whole envelope).
            return self.api.upload_in_parts(
                record_id=record_id, scope_id=scope_id, envelope=body,  # type: ignore[arg-type]
                size=size, registration=registration, supersedes=supersedes,
                patient=self._for(patient), epoch=epoch)
        return self.api.upload_record(record_id=record_id, scope_id=scope_id, envelope=body,
                                      registration=registration, supersedes=supersedes,
                                      patient=self._for(patient), epoch=epoch)

    def list_records(self, *, patient: Address,
                     scope_ids: Sequence[ScopeId] | None = None) -> list[RecordInfo]:
        found = self.api.records(patient=self._for(patient))
        if scope_ids is None:
            return found
        wanted = {bytes(s) for s in scope_ids}
        return [r for r in found if bytes(r.scope_id) in wanted]

    def get_record(self, record_id: RecordId, *, patient: Address) -> RecordInfo:
        """One of ``patient``'s records by id (the signed-in patient's, or a ward's: one
        request, whatever their number of records); the block the service names for its
        registration is kept as the hint of :meth:`onchain_commitment`."""
        info, block = self.api.record(record_id, patient=self._for(patient))
        if block is not None:
            self._blocks[bytes(record_id)] = block
        return info

    def open_own_record(self, *, patient: Address, record_id: RecordId) -> ContentStream:
        return ContentStream(self.api.download(record_id), cid=Cid(""))

    def own_envelopes(self, *, patient: Address,
                      record_ids: Sequence[RecordId]) -> Iterator[tuple[RecordId, bytes]]:
        """Many envelopes from one request (``POST /patient/records/contents``)."""
        return self.api.download_many(record_ids)

    def stage_envelopes(self, *, patient: Address,
                        items: Sequence[StagedEnvelope]) -> list[StagedInfo]:
        """One ``POST /patient/staged`` for ``items`` (at most 1,000, streamed)."""
        return self.api.stage_envelopes(items, patient=self._for(patient))

    def staged_ids(self, *, patient: Address) -> set[RecordId]:
        return self.api.staged_ids(patient=self._for(patient))

    def register_batch(self, *, patient: Address, manifest: BatchManifest,
                       registration: SignedAction | SentTransaction) -> BatchInfo:
        return self.api.register_batch(manifest, registration=registration,
                                       patient=self._for(patient))

    def reads_of(self, *, patient: Address) -> list[ReadEntry]:
        return self.api.reads(patient=self._for(patient))

    def attempted_reads_of(self, *, patient: Address) -> AttemptedReads:
        return self.api.attempted_reads(patient=self._for(patient))

    # -- grants ------------------------------------------------------------------------------

    def grant_access(self, *, patient: Address, provider: Address,
                     scope_ids: Sequence[ScopeId], expires_at: int,
                     kfrags: Mapping[bytes, Sequence[bytes]],
                     authorization: SignedAction | SentTransaction) -> GrantResult:
        tx_hash, block = self.api.grant(provider=provider, scope_ids=scope_ids,
                                        expires_at=expires_at, kfrags=kfrags,
                                        authorization=authorization,
                                        patient=self._for(patient))
        return GrantResult(patient=patient, provider=provider,
                                  scope_ids=tuple(scope_ids), expires_at=expires_at,
                                  tx_hash=tx_hash, block_number=block,
                                  kfrags_stored=sum(len(v) for v in kfrags.values()))

    def revoke_access(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                      authorization: SignedAction | SentTransaction) -> RevokeResult:
        return self.api.revoke(provider=provider, scope_id=scope_id,
                               authorization=authorization, patient=self._for(patient))

    def revoke_all(self, *, patient: Address, provider: Address,
                   authorization: SentTransaction) -> RevokeResult:
        return self.api.revoke_all(provider=provider, tx_hash=authorization.tx_hash,
                                   patient=self._for(patient))

    def reissue_kfrags(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                       epoch: int, kfrags: Sequence[bytes]) -> int:
        return self.api.reissue_kfrags(provider=provider, scope_id=scope_id, epoch=epoch,
                                       kfrags=kfrags, patient=self._for(patient))

    def grants_of(self, *, patient: Address) -> list[Grant]:
        return self.api.grants(patient=self._for(patient))

    def grants_to(self, *, provider: Address) -> list[Grant]:
        return self._events().grants_to(provider)

    def active_providers(self) -> list[Provider]:
        return self._events().providers(active_only=True)

    def leave_kit(self, *, patient: Address, provider: Address,
                  kfrags: Mapping[bytes, Sequence[bytes]], epoch: int = 0) -> int:
        return self.api.leave_emergency_kit(provider=provider, kfrags=kfrags, epoch=epoch)

    def patients_of(self, *, provider: Address) -> list[Address]:
        return self.api.patients()

    def readable_records(self, *, provider: Address, patient: Address | None = None,
                         content_type: str | None = None) -> list[RecordInfo]:
        return self.api.readable_records(patient=patient, content_type=content_type)

    # -- reads -------------------------------------------------------------------------------

    def read(self, *, request: ReadRequest, signature: bytes) -> ReadGrant:
        return self.api.read(request=request, signature=signature)

    def fetch(self, cid: Cid) -> ContentStream:
        return ContentStream(self.api.fetch(cid), cid=cid)

    def onchain_commitment(self, *, patient: Address, record_id: RecordId) -> Commitment:
        """From the own node: the record's ``RecordRegistered`` event or, for a record
        registered in a batch, the patient's ``RecordBatchRegistered`` and the batch's manifest
        (the service's copy, used only if it rebuilds to the on-chain root); looked for in the
        block the service named (:meth:`get_record`) — a hint only, checked by the node — else
        in the whole chain."""
        return registered_commitment(self._reader or self.chain, patient=patient,
                                     record_id=record_id,
                                     block=self._blocks.pop(bytes(record_id), None),
                                     manifests=self._manifests)

    def onchain_commitments(self, *, patient: Address) -> Mapping[bytes, Commitment]:
        """Every commitment ``patient`` registered, from ONE ``eth_getLogs`` on the own node
        (and each batch's manifest, checked against its on-chain root)."""
        return registered_commitments(self.chain, patient=patient, manifests=self._manifests)

    # -- messages and confirmations ----------------------------------------------------------

    def send_message(self, *, sender: Address, patient: Address, provider: Address | None,
                     kind: str, message_id: bytes, envelope: Envelope,
                     transaction: SentTransaction) -> CareMessage:
        body = bytes(envelope) if isinstance(envelope, memoryview | bytearray) else envelope
        if kind == ACCESS_REQUEST:
            return self.api.request_access(message_id=message_id, patient=patient,
                                           envelope=body, tx_hash=transaction.tx_hash)
        return self.api.send_message(message_id=message_id, patient=patient, kind=kind,
                                     envelope=body, tx_hash=transaction.tx_hash,
                                     provider=provider)

    def open_message(self, *, reader: Address, ref: bytes) -> ContentStream:
        return ContentStream(self.api.message_content(ref), cid=Cid(""))

    def patient_inbox(self, *, patient: Address) -> list[InboxItem]:
        return self.api.patient_inbox(patient=self._for(patient))

    def provider_inbox(self, *, provider: Address) -> list[InboxItem]:
        return self.api.provider_inbox()

    def answer_no(self, *, patient: Address, provider: Address,
                  transaction: SentTransaction) -> Confirmed:
        return self.api.confirm("decline-request", tx_hash=transaction.tx_hash,
                                provider=provider)

    def confirm_appoint_guardian(self, *, patient: Address, guardian: Address,
                                 transaction: SentTransaction) -> Confirmed:
        return self.api.confirm("appoint-guardian", tx_hash=transaction.tx_hash,
                                guardian=guardian)

    def confirm_emergency_policy(self, *, patient: Address, allowed: bool, max_duration: int,
                                 transaction: SentTransaction) -> Confirmed:
        return self.api.confirm("emergency-policy", tx_hash=transaction.tx_hash,
                                acting_for=self._for(patient), allowed=allowed,
                                max_duration=max_duration)

    def confirm_break_glass(self, *, provider: Address, patient: Address,
                            transaction: SentTransaction) -> Confirmed:
        return self.api.confirm("break-glass", tx_hash=transaction.tx_hash, patient=patient)


__all__ = ["ApiService"]
