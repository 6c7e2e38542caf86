"""``LocalService``: :class:`~kizuna.client.service.KizunaService` in-process — the service's use
cases called over a ``ServiceContext`` (tests and ``kizuna --local``).

The one module of ``kizuna.client`` that imports ``kizuna.services`` at module level: it is
imported only where a local service is opened (``kizuna.cli.participant.open_session`` with
``--local``, the demo, tests), so a client that talks to the API never loads the service, its
database layer or the event index (tests/test_package_graph.py holds the rule).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kizuna.batch import BatchManifest
from kizuna.chain.eip712 import Eip712Domain, SignedAction, TypedData
from kizuna.chain.models import Grant, Provider
from kizuna.client.service import ChainDocuments, Envelope
from kizuna.errors import NotFoundError
from kizuna.receipts.request import ReadRequest
from kizuna.services import (
    batches,
    care,
    data_requests,
    emergency,
    grants,
    guardians,
    inbox,
    records,
    refusals,
    requests,
)
from kizuna.services.read import serve_read
from kizuna.storage.store import ContentStream
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId
from kizuna.wire.batches import BatchInfo, StagedEnvelope, StagedInfo
from kizuna.wire.care import CareMessage, InboxKey
from kizuna.wire.consent import Confirmed, GrantResult, RevokeResult
from kizuna.wire.data_requests import DataRequest, Delivery
from kizuna.wire.inbox import InboxItem, ReadEntry
from kizuna.wire.onchain import SentTransaction
from kizuna.wire.reads import AttemptedReads, ReadGrant
from kizuna.wire.records import RecordInfo
from kizuna.wire.scopes import ScopeKeys

if TYPE_CHECKING:
    from kizuna.chain.relayer import Relayer
    from kizuna.services.context import ServiceContext


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
                          signature: bytes) -> InboxKey:
        return care.publish_inbox_key(self.ctx, patient=patient, public_key=public_key,
                                      signature=signature)

    def inbox_key_of(self, patient: Address) -> InboxKey:
        return care.inbox_key_of(self.ctx, patient)

    def upload_record(self, *, patient: Address, record_id: RecordId, scope_id: ScopeId,
                      envelope: Envelope, registration: SignedAction | SentTransaction,
                      supersedes: RecordId | None = None,
                      epoch: int = 0) -> RecordInfo:
        return records.upload_record(self.ctx, patient=patient, record_id=record_id,
                                     scope_id=scope_id, envelope=envelope,
                                     registration=registration, relayer=self.relayer,
                                     supersedes=supersedes, epoch=epoch)

    def list_records(self, *, patient: Address,
                     scope_ids: Sequence[ScopeId] | None = None) -> list[RecordInfo]:
        return records.list_records(self.ctx, patient=patient, scope_ids=scope_ids)

    def get_record(self, record_id: RecordId, *, patient: Address) -> RecordInfo:
        """One of ``patient``'s records: another patient's is refused (AccessDenied), as the
        API refuses it — a participant's service learns nothing of others' records."""
        return records.get_own_record(self.ctx, patient=patient, record_id=record_id)

    def open_own_record(self, *, patient: Address, record_id: RecordId) -> ContentStream:
        return records.open_own_record(self.ctx, patient=patient, record_id=record_id)

    def own_envelopes(self, *, patient: Address,
                      record_ids: Sequence[RecordId]) -> Iterator[tuple[RecordId, bytes]]:
        for info, envelope in records.own_envelopes(self.ctx, patient=patient,
                                                    record_ids=record_ids):
            yield info.record_id, envelope

    def stage_envelopes(self, *, patient: Address,
                        items: Sequence[StagedEnvelope]) -> list[StagedInfo]:
        return batches.stage_envelopes(self.ctx, patient=patient, items=items)

    def staged_ids(self, *, patient: Address) -> set[RecordId]:
        return batches.staged_ids(self.ctx, patient=patient)

    def register_batch(self, *, patient: Address, manifest: BatchManifest,
                       registration: SignedAction | SentTransaction) -> BatchInfo:
        return batches.register_batch(self.ctx, patient=patient, manifest=manifest,
                                      registration=registration, relayer=self.relayer)

    def reads_of(self, *, patient: Address) -> list[ReadEntry]:
        return inbox.reads_of(self.ctx, patient=patient)

    def attempted_reads_of(self, *, patient: Address) -> AttemptedReads:
        return refusals.attempted_reads(self.ctx, patient=patient)

    def grant_access(self, *, patient: Address, provider: Address,
                     scope_ids: Sequence[ScopeId], expires_at: int,
                     kfrags: Mapping[bytes, Sequence[bytes]],
                     authorization: SignedAction | SentTransaction) -> GrantResult:
        return grants.grant_access(self.ctx, patient=patient, provider=provider,
                                   scope_ids=scope_ids, expires_at=expires_at, kfrags=kfrags,
                                   authorization=authorization, relayer=self.relayer)

    def revoke_access(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                      authorization: SignedAction | SentTransaction) -> RevokeResult:
        return grants.revoke_access(self.ctx, patient=patient, provider=provider,
                                    scope_id=scope_id, authorization=authorization,
                                    relayer=self.relayer)

    def revoke_all(self, *, patient: Address, provider: Address,
                   authorization: SentTransaction) -> RevokeResult:
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
                         content_type: str | None = None) -> list[RecordInfo]:
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
                     transaction: SentTransaction) -> CareMessage:
        return care.send_message(self.ctx, sender=sender, patient=patient, provider=provider,
                                 kind=kind, message_id=message_id, envelope=envelope,
                                 transaction=transaction)

    def open_message(self, *, reader: Address, ref: bytes) -> ContentStream:
        return care.open_message(self.ctx, reader=reader, ref=ref)

    def patient_inbox(self, *, patient: Address) -> list[InboxItem]:
        return inbox.patient_inbox(self.ctx, patient=patient)

    def provider_inbox(self, *, provider: Address) -> list[InboxItem]:
        return inbox.provider_inbox(self.ctx, provider=provider)

    def answer_no(self, *, patient: Address, provider: Address,
                  transaction: SentTransaction) -> Confirmed:
        return requests.answer_no(self.ctx, patient=patient, provider=provider,
                                  transaction=transaction)

    def confirm_appoint_guardian(self, *, patient: Address, guardian: Address,
                                 transaction: SentTransaction) -> Confirmed:
        return guardians.confirm_appoint_guardian(self.ctx, patient=patient,
                                                  guardian=guardian, transaction=transaction)

    def confirm_emergency_policy(self, *, patient: Address, allowed: bool, max_duration: int,
                                 transaction: SentTransaction) -> Confirmed:
        return guardians.confirm_emergency_policy(self.ctx, patient=patient, allowed=allowed,
                                                  max_duration=max_duration,
                                                  transaction=transaction)

    def confirm_break_glass(self, *, provider: Address, patient: Address,
                            transaction: SentTransaction) -> Confirmed:
        return guardians.confirm_break_glass(self.ctx, provider=provider, patient=patient,
                                             transaction=transaction)


class LocalDataRequests:
    """The service's data-request use cases called in-process (tests, ``--local``): the local
    mode of :mod:`kizuna.client.data_requests` (``transport``), beside ``ApiDataRequests``."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def ask(self, **kwargs: Any) -> DataRequest:
        return data_requests.ask(self.ctx, **kwargs)

    def get(self, request_id: bytes, *, reader: str) -> DataRequest:
        return data_requests.get_request(self.ctx, request_id, reader=reader)

    def of_patient(self, patient: str) -> list[DataRequest]:
        return data_requests.requests_of_patient(self.ctx, patient)

    def to_provider(self, provider: str) -> list[DataRequest]:
        return data_requests.requests_to_provider(self.ctx, provider)

    def note(self, *, reader: str, request_id: bytes) -> bytes:
        with data_requests.open_note(self.ctx, reader=reader, request_id=request_id) as stream:
            return stream.read()

    def upload(self, *, provider: str, request_id: bytes, message_id: bytes,
               envelope: bytes) -> Delivery:
        return data_requests.upload_delivery(self.ctx, provider=provider,
                                             request_id=request_id, message_id=message_id,
                                             envelope=envelope)

    def answer(self, **kwargs: Any) -> DataRequest:
        return data_requests.answer(self.ctx, **kwargs)

    def delivery(self, *, reader: str, request_id: bytes, commitment: bytes) -> bytes:
        with data_requests.open_delivery(self.ctx, reader=reader, request_id=request_id,
                                         commitment=commitment) as stream:
            return stream.read()


__all__ = ["LocalDataRequests", "LocalService"]

if TYPE_CHECKING:
    from kizuna.client.service import KizunaService

    def _local_is_a_service(ctx: ServiceContext) -> KizunaService:
        """Never called: makes mypy check that LocalService satisfies the Protocol."""
        return LocalService(ctx)
