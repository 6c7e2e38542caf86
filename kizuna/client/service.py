"""The seam between a participant's client and the Kizuna service.

:class:`KizunaService` is everything the patient's and the provider's clients ask of the
service — never a secret: envelopes, public keys, signatures, signed read requests and
transaction hashes go in; metadata, envelopes and capsule fragments come out. Two
implementations satisfy it: :class:`LocalService` (the use cases called in-process: tests and
``kizuna --local``) and :class:`~kizuna.client.api_service.ApiService` (the same calls over
the routes of ``kizuna.api``); what both build from public chain state alone (domains,
provider keys, typed data to sign) is :class:`ChainDocuments`, written once. The participant's
*own* transactions (guardians, break-glass, care events, declining a request) do not go
through the service: the client sends them with its signer over its own connection to the
chain, and the service only confirms them from their events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO, Protocol

from kizuna.batch import BatchManifest
from kizuna.chain.eip712 import Eip712Domain, SignedAction, TypedData
from kizuna.chain.models import Grant, Provider
from kizuna.client.keys import derivation_domain
from kizuna.crypto import pre
from kizuna.crypto.wallet_keys import KeyDerivationDomain
from kizuna.errors import NotFoundError
from kizuna.proxy.kfrags import ScopeKeys
from kizuna.receipts.request import ReadRequest
from kizuna.receipts.request import proxy_domain as _proxy_domain
from kizuna.services import (
    batches,
    care,
    emergency,
    grants,
    guardians,
    inbox,
    records,
    refusals,
    requests,
)
from kizuna.services.onchain import SentTransaction
from kizuna.services.read import ReadGrant, serve_read
from kizuna.storage.store import ContentStream
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.chain.relayer import Relayer
    from kizuna.services.context import ServiceContext

Envelope = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]


class KizunaService(Protocol):
    """What a client needs from the service (see the module docstring)."""

    # -- where: domains and keys -------------------------------------------------------------

    def key_domain(self) -> KeyDerivationDomain: ...
    def proxy_domain(self) -> Eip712Domain: ...
    def chain_time(self) -> int: ...
    def provider_key(self, provider: Address) -> pre.UmbralPublicKey: ...
    def scope_epoch(self, patient: Address, scope_id: ScopeId) -> int: ...
    def scope_keys_statement(self, *, patient: Address, scope_id: ScopeId,
                             delegating_key: bytes, verifying_key: bytes,
                             epoch: int = 0) -> TypedData: ...
    def register_scope_keys(self, *, patient: Address, scope_id: ScopeId,
                            delegating_key: bytes, verifying_key: bytes,
                            signature: bytes, epoch: int = 0) -> ScopeKeys: ...
    def inbox_key_statement(self, *, patient: Address, public_key: bytes) -> TypedData: ...
    def publish_inbox_key(self, *, patient: Address, public_key: bytes,
                          signature: bytes) -> care.InboxKey: ...
    def inbox_key_of(self, patient: Address) -> care.InboxKey: ...

    # -- typed data to sign (nonces from the chain) ------------------------------------------

    def register_record_typed_data(self, *, patient: Address, record_id: RecordId,
                                   commitment: Commitment, scope_id: ScopeId, deadline: int,
                                   supersedes: RecordId | None = None) -> TypedData: ...
    def register_batch_typed_data(self, *, patient: Address, root: bytes, count: int,
                                  deadline: int) -> TypedData: ...
    def grant_typed_data(self, *, patient: Address, provider: Address,
                         scope_ids: Sequence[ScopeId], expires_at: int,
                         deadline: int) -> TypedData: ...
    def revoke_typed_data(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                          deadline: int) -> TypedData: ...

    # -- records -----------------------------------------------------------------------------

    def upload_record(self, *, patient: Address, record_id: RecordId, scope_id: ScopeId,
                      envelope: Envelope, registration: SignedAction | SentTransaction,
                      supersedes: RecordId | None = None,
                      epoch: int = 0) -> records.RecordInfo: ...
    def list_records(self, *, patient: Address,
                     scope_ids: Sequence[ScopeId] | None = None) -> list[records.RecordInfo]: ...
    def get_record(self, record_id: RecordId) -> records.RecordInfo: ...
    def open_own_record(self, *, patient: Address, record_id: RecordId) -> ContentStream: ...
    def own_envelopes(self, *, patient: Address,
                      record_ids: Sequence[RecordId]) -> Iterator[tuple[RecordId, bytes]]: ...
    def stage_envelopes(self, *, patient: Address,
                        items: Sequence[batches.StagedEnvelope]) -> list[batches.StagedInfo]: ...
    def staged_ids(self, *, patient: Address) -> set[RecordId]: ...
    def register_batch(self, *, patient: Address, manifest: BatchManifest,
                       registration: SignedAction | SentTransaction) -> batches.BatchInfo: ...
    def reads_of(self, *, patient: Address) -> list[inbox.ReadEntry]: ...
    def attempted_reads_of(self, *, patient: Address) -> refusals.AttemptedReads: ...

    # -- grants ------------------------------------------------------------------------------

    def grant_access(self, *, patient: Address, provider: Address,
                     scope_ids: Sequence[ScopeId], expires_at: int,
                     kfrags: Mapping[bytes, Sequence[bytes]],
                     authorization: SignedAction | SentTransaction) -> grants.GrantResult: ...
    def revoke_access(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                      authorization: SignedAction | SentTransaction) -> grants.RevokeResult: ...
    def revoke_all(self, *, patient: Address, provider: Address,
                   authorization: SentTransaction) -> grants.RevokeResult: ...
    def reissue_kfrags(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                       epoch: int, kfrags: Sequence[bytes]) -> int: ...
    def grants_of(self, *, patient: Address) -> list[Grant]: ...
    def grants_to(self, *, provider: Address) -> list[Grant]: ...
    def active_providers(self) -> list[Provider]: ...
    def leave_kit(self, *, patient: Address, provider: Address,
                  kfrags: Mapping[bytes, Sequence[bytes]], epoch: int = 0) -> int: ...
    def patients_of(self, *, provider: Address) -> list[Address]: ...
    def readable_records(self, *, provider: Address, patient: Address | None = None,
                         content_type: str | None = None) -> list[records.RecordInfo]: ...

    # -- reads -------------------------------------------------------------------------------

    def read(self, *, request: ReadRequest, signature: bytes) -> ReadGrant: ...
    def fetch(self, cid: Cid) -> ContentStream: ...
    def onchain_commitment(self, *, patient: Address, record_id: RecordId) -> Commitment: ...
    def onchain_commitments(self, *, patient: Address) -> Mapping[bytes, Commitment]: ...

    # -- messages and confirmations ----------------------------------------------------------

    def send_message(self, *, sender: Address, patient: Address, provider: Address | None,
                     kind: str, message_id: bytes, envelope: Envelope,
                     transaction: SentTransaction) -> care.CareMessage: ...
    def open_message(self, *, reader: Address, ref: bytes) -> ContentStream: ...
    def patient_inbox(self, *, patient: Address) -> list[inbox.InboxItem]: ...
    def provider_inbox(self, *, provider: Address) -> list[inbox.InboxItem]: ...
    def answer_no(self, *, patient: Address, provider: Address,
                  transaction: SentTransaction) -> guardians.Confirmed: ...
    def confirm_appoint_guardian(self, *, patient: Address, guardian: Address,
                                 transaction: SentTransaction) -> guardians.Confirmed: ...
    def confirm_emergency_policy(self, *, patient: Address, allowed: bool, max_duration: int,
                                 transaction: SentTransaction) -> guardians.Confirmed: ...
    def confirm_break_glass(self, *, provider: Address, patient: Address,
                            transaction: SentTransaction) -> guardians.Confirmed: ...


class ChainDocuments:
    """What every :class:`KizunaService` builds from public chain state alone: the key
    derivation and proxy domains, the chain's clock, and the EIP-712 documents a participant
    signs (their nonces read from the chain). Shared by :class:`LocalService` and
    :class:`~kizuna.client.api_service.ApiService`, which differ only in where ``chain``
    comes from (the service's context, or the participant's own node connection)."""

    chain: Chain

    def key_domain(self) -> KeyDerivationDomain:
        return derivation_domain(self.chain)

    def proxy_domain(self) -> Eip712Domain:
        return _proxy_domain(chain_id=self.chain.chain_id,
                             access_log=self.chain.deployment.addresses["AccessLog"])

    def chain_time(self) -> int:
        return self.chain.head().timestamp

    def provider_key(self, provider: Address) -> pre.UmbralPublicKey:
        return grants.registry_key(self.chain, provider)

    def register_record_typed_data(self, *, patient: Address, record_id: RecordId,
                                   commitment: Commitment, scope_id: ScopeId, deadline: int,
                                   supersedes: RecordId | None = None) -> TypedData:
        return self.chain.ledger.register_record_typed_data(
            patient=patient, record_id=record_id, commitment=commitment, scope_id=scope_id,
            deadline=deadline, supersedes=supersedes)

    def register_batch_typed_data(self, *, patient: Address, root: bytes, count: int,
                                  deadline: int) -> TypedData:
        return self.chain.ledger.register_batch_typed_data(patient=patient, root=root,
                                                           count=count, deadline=deadline)

    def grant_typed_data(self, *, patient: Address, provider: Address,
                         scope_ids: Sequence[ScopeId], expires_at: int,
                         deadline: int) -> TypedData:
        """``Grant`` for one scope, ``GrantBatch`` for several."""
        ledger = self.chain.ledger
        if len(scope_ids) == 1:
            return ledger.grant_typed_data(patient=patient, provider=provider,
                                           scope_id=scope_ids[0], expires_at=expires_at,
                                           deadline=deadline)
        return ledger.grant_batch_typed_data(patient=patient, provider=provider,
                                             scope_ids=scope_ids, expires_at=expires_at,
                                             deadline=deadline)

    def revoke_typed_data(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                          deadline: int) -> TypedData:
        return self.chain.ledger.revoke_typed_data(patient=patient, provider=provider,
                                                   scope_id=scope_id, deadline=deadline)


class LocalService(ChainDocuments):
    """:class:`KizunaService` in-process: the use cases over a ``ServiceContext``."""

    def __init__(self, ctx: ServiceContext, *, relayer: Relayer | None = None) -> None:
        self.ctx = ctx
        self.chain = ctx.chain
        self.relayer = relayer

    def proxy_domain(self) -> Eip712Domain:
        return self.ctx.domain

    def scope_epoch(self, patient: Address, scope_id: ScopeId) -> int:
        return grants.scope_epoch(self.ctx, patient=patient, scope_id=scope_id)

    def scope_keys_statement(self, *, patient: Address, scope_id: ScopeId,
                             delegating_key: bytes, verifying_key: bytes,
                             epoch: int = 0) -> TypedData:
        return grants.scope_keys_statement(self.ctx, patient=patient, scope_id=scope_id,
                                           delegating_key=delegating_key,
                                           verifying_key=verifying_key, epoch=epoch)

    def register_scope_keys(self, *, patient: Address, scope_id: ScopeId,
                            delegating_key: bytes, verifying_key: bytes,
                            signature: bytes, epoch: int = 0) -> ScopeKeys:
        return grants.register_scope_keys(self.ctx, patient=patient, scope_id=scope_id,
                                          delegating_key=delegating_key,
                                          verifying_key=verifying_key, signature=signature,
                                          epoch=epoch)

    def inbox_key_statement(self, *, patient: Address, public_key: bytes) -> TypedData:
        return care.inbox_key_statement(self.ctx, patient=patient, public_key=public_key)

    def publish_inbox_key(self, *, patient: Address, public_key: bytes,
                          signature: bytes) -> care.InboxKey:
        return care.publish_inbox_key(self.ctx, patient=patient, public_key=public_key,
                                      signature=signature)

    def inbox_key_of(self, patient: Address) -> care.InboxKey:
        return care.inbox_key_of(self.ctx, patient)

    def upload_record(self, *, patient: Address, record_id: RecordId, scope_id: ScopeId,
                      envelope: Envelope, registration: SignedAction | SentTransaction,
                      supersedes: RecordId | None = None,
                      epoch: int = 0) -> records.RecordInfo:
        return records.upload_record(self.ctx, patient=patient, record_id=record_id,
                                     scope_id=scope_id, envelope=envelope,
                                     registration=registration, relayer=self.relayer,
                                     supersedes=supersedes, epoch=epoch)

    def list_records(self, *, patient: Address,
                     scope_ids: Sequence[ScopeId] | None = None) -> list[records.RecordInfo]:
        return records.list_records(self.ctx, patient=patient, scope_ids=scope_ids)

    def get_record(self, record_id: RecordId) -> records.RecordInfo:
        return records.get_record(self.ctx, record_id)

    def open_own_record(self, *, patient: Address, record_id: RecordId) -> ContentStream:
        return records.open_own_record(self.ctx, patient=patient, record_id=record_id)

    def own_envelopes(self, *, patient: Address,
                      record_ids: Sequence[RecordId]) -> Iterator[tuple[RecordId, bytes]]:
        for info, envelope in records.own_envelopes(self.ctx, patient=patient,
                                                    record_ids=record_ids):
            yield info.record_id, envelope

    def stage_envelopes(self, *, patient: Address,
                        items: Sequence[batches.StagedEnvelope]) -> list[batches.StagedInfo]:
        return batches.stage_envelopes(self.ctx, patient=patient, items=items)

    def staged_ids(self, *, patient: Address) -> set[RecordId]:
        return batches.staged_ids(self.ctx, patient=patient)

    def register_batch(self, *, patient: Address, manifest: BatchManifest,
                       registration: SignedAction | SentTransaction) -> batches.BatchInfo:
        return batches.register_batch(self.ctx, patient=patient, manifest=manifest,
                                      registration=registration, relayer=self.relayer)

    def reads_of(self, *, patient: Address) -> list[inbox.ReadEntry]:
        return inbox.reads_of(self.ctx, patient=patient)

    def attempted_reads_of(self, *, patient: Address) -> refusals.AttemptedReads:
        return refusals.attempted_reads(self.ctx, patient=patient)

    def grant_access(self, *, patient: Address, provider: Address,
                     scope_ids: Sequence[ScopeId], expires_at: int,
                     kfrags: Mapping[bytes, Sequence[bytes]],
                     authorization: SignedAction | SentTransaction) -> grants.GrantResult:
        return grants.grant_access(self.ctx, patient=patient, provider=provider,
                                   scope_ids=scope_ids, expires_at=expires_at, kfrags=kfrags,
                                   authorization=authorization, relayer=self.relayer)

    def revoke_access(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                      authorization: SignedAction | SentTransaction) -> grants.RevokeResult:
        return grants.revoke_access(self.ctx, patient=patient, provider=provider,
                                    scope_id=scope_id, authorization=authorization,
                                    relayer=self.relayer)

    def revoke_all(self, *, patient: Address, provider: Address,
                   authorization: SentTransaction) -> grants.RevokeResult:
        return grants.revoke_all(self.ctx, patient=patient, provider=provider,
                                 authorization=authorization)

    def reissue_kfrags(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                       epoch: int, kfrags: Sequence[bytes]) -> int:
        return grants.reissue_kfrags(self.ctx, patient=patient, provider=provider,
                                     scope_id=scope_id, epoch=epoch, kfrags=kfrags)

    def grants_of(self, *, patient: Address) -> list[Grant]:
        return grants.grants_of(self.ctx, patient=patient)

    def grants_to(self, *, provider: Address) -> list[Grant]:
        return grants.grants_to(self.ctx, provider=provider)

    def active_providers(self) -> list[Provider]:
        return grants.active_providers(self.ctx)

    def leave_kit(self, *, patient: Address, provider: Address,
                  kfrags: Mapping[bytes, Sequence[bytes]], epoch: int = 0) -> int:
        return emergency.leave_kit(self.ctx, patient=patient, provider=provider, kfrags=kfrags,
                                   epoch=epoch)

    def patients_of(self, *, provider: Address) -> list[Address]:
        return grants.patients_of(self.ctx, provider=provider)

    def readable_records(self, *, provider: Address, patient: Address | None = None,
                         content_type: str | None = None) -> list[records.RecordInfo]:
        return records.readable_records(self.ctx, provider=provider, patient=patient,
                                        content_type=content_type)

    def read(self, *, request: ReadRequest, signature: bytes) -> ReadGrant:
        return serve_read(self.ctx, request=request, signature=signature)

    def fetch(self, cid: Cid) -> ContentStream:
        return self.ctx.store.get(cid)

    def onchain_commitment(self, *, patient: Address, record_id: RecordId) -> Commitment:
        found = self.ctx.index.registration(record_id)  # by id: no scan of the records
        if found is None or found.patient != patient:
            raise NotFoundError(f"record 0x{record_id.hex()} is not registered to {patient}")
        return found.commitment

    def onchain_commitments(self, *, patient: Address) -> Mapping[bytes, Commitment]:
        return {bytes(r.record_id): r.commitment
                for r in self.ctx.index.all_records_of(patient)}

    def send_message(self, *, sender: Address, patient: Address, provider: Address | None,
                     kind: str, message_id: bytes, envelope: Envelope,
                     transaction: SentTransaction) -> care.CareMessage:
        return care.send_message(self.ctx, sender=sender, patient=patient, provider=provider,
                                 kind=kind, message_id=message_id, envelope=envelope,
                                 transaction=transaction)

    def open_message(self, *, reader: Address, ref: bytes) -> ContentStream:
        return care.open_message(self.ctx, reader=reader, ref=ref)

    def patient_inbox(self, *, patient: Address) -> list[inbox.InboxItem]:
        return inbox.patient_inbox(self.ctx, patient=patient)

    def provider_inbox(self, *, provider: Address) -> list[inbox.InboxItem]:
        return inbox.provider_inbox(self.ctx, provider=provider)

    def answer_no(self, *, patient: Address, provider: Address,
                  transaction: SentTransaction) -> guardians.Confirmed:
        return requests.answer_no(self.ctx, patient=patient, provider=provider,
                                  transaction=transaction)

    def confirm_appoint_guardian(self, *, patient: Address, guardian: Address,
                                 transaction: SentTransaction) -> guardians.Confirmed:
        return guardians.confirm_appoint_guardian(self.ctx, patient=patient,
                                                  guardian=guardian, transaction=transaction)

    def confirm_emergency_policy(self, *, patient: Address, allowed: bool, max_duration: int,
                                 transaction: SentTransaction) -> guardians.Confirmed:
        return guardians.confirm_emergency_policy(self.ctx, patient=patient, allowed=allowed,
                                                  max_duration=max_duration,
                                                  transaction=transaction)

    def confirm_break_glass(self, *, provider: Address, patient: Address,
                            transaction: SentTransaction) -> guardians.Confirmed:
        return guardians.confirm_break_glass(self.ctx, provider=provider, patient=patient,
                                             transaction=transaction)


__all__ = ["ChainDocuments", "Envelope", "KizunaService", "LocalService"]

if TYPE_CHECKING:

    def _local_is_a_service(ctx: ServiceContext) -> KizunaService:
        """Never called: makes mypy check that LocalService satisfies the Protocol."""
        return LocalService(ctx)
