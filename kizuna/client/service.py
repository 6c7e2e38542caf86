"""The seam between a participant's client and the Kizuna service.

:class:`KizunaService` is everything the patient's and the provider's clients ask of the
service — never a secret: envelopes, public keys, signatures, signed read requests and
transaction hashes go in; metadata, envelopes and capsule fragments come out. Two
implementations satisfy it: :class:`~kizuna.client.local.LocalService` (the use cases called
in-process: tests and ``kizuna --local``; its own module, the one place of ``kizuna.client`` that
imports the service) and :class:`~kizuna.client.api_service.ApiService` (the same calls over
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
from kizuna.receipts.request import ReadRequest
from kizuna.receipts.request import proxy_domain as _proxy_domain
from kizuna.storage.store import ContentStream
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId
from kizuna.wire.batches import BatchInfo, StagedEnvelope, StagedInfo
from kizuna.wire.care import CareMessage, InboxKey
from kizuna.wire.consent import Confirmed, GrantResult, RevokeResult
from kizuna.wire.inbox import InboxItem, ReadEntry
from kizuna.wire.onchain import SentTransaction
from kizuna.wire.reads import AttemptedReads, ReadGrant
from kizuna.wire.records import RecordInfo
from kizuna.wire.scopes import ScopeKeys

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain

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
                          signature: bytes) -> InboxKey: ...
    def inbox_key_of(self, patient: Address) -> InboxKey: ...

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
                      epoch: int = 0) -> RecordInfo: ...
    def list_records(self, *, patient: Address,
                     scope_ids: Sequence[ScopeId] | None = None) -> list[RecordInfo]: ...
    def get_record(self, record_id: RecordId, *, patient: Address) -> RecordInfo: ...
    def open_own_record(self, *, patient: Address, record_id: RecordId) -> ContentStream: ...
    def own_envelopes(self, *, patient: Address,
                      record_ids: Sequence[RecordId]) -> Iterator[tuple[RecordId, bytes]]: ...
    def stage_envelopes(self, *, patient: Address,
                        items: Sequence[StagedEnvelope]) -> list[StagedInfo]: ...
    def staged_ids(self, *, patient: Address) -> set[RecordId]: ...
    def register_batch(self, *, patient: Address, manifest: BatchManifest,
                       registration: SignedAction | SentTransaction) -> BatchInfo: ...
    def reads_of(self, *, patient: Address) -> list[ReadEntry]: ...
    def attempted_reads_of(self, *, patient: Address) -> AttemptedReads: ...

    # -- grants ------------------------------------------------------------------------------

    def grant_access(self, *, patient: Address, provider: Address,
                     scope_ids: Sequence[ScopeId], expires_at: int,
                     kfrags: Mapping[bytes, Sequence[bytes]],
                     authorization: SignedAction | SentTransaction) -> GrantResult: ...
    def revoke_access(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                      authorization: SignedAction | SentTransaction) -> RevokeResult: ...
    def revoke_all(self, *, patient: Address, provider: Address,
                   authorization: SentTransaction) -> RevokeResult: ...
    def reissue_kfrags(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                       epoch: int, kfrags: Sequence[bytes]) -> int: ...
    def grants_of(self, *, patient: Address) -> list[Grant]: ...
    def grants_to(self, *, provider: Address) -> list[Grant]: ...
    def active_providers(self) -> list[Provider]: ...
    def leave_kit(self, *, patient: Address, provider: Address,
                  kfrags: Mapping[bytes, Sequence[bytes]], epoch: int = 0) -> int: ...
    def patients_of(self, *, provider: Address) -> list[Address]: ...
    def readable_records(self, *, provider: Address, patient: Address | None = None,
                         content_type: str | None = None) -> list[RecordInfo]: ...

    # -- reads -------------------------------------------------------------------------------

    def read(self, *, request: ReadRequest, signature: bytes) -> ReadGrant: ...
    def fetch(self, cid: Cid) -> ContentStream: ...
    def onchain_commitment(self, *, patient: Address, record_id: RecordId) -> Commitment: ...
    def onchain_commitments(self, *, patient: Address) -> Mapping[bytes, Commitment]: ...

    # -- messages and confirmations ----------------------------------------------------------

    def send_message(self, *, sender: Address, patient: Address, provider: Address | None,
                     kind: str, message_id: bytes, envelope: Envelope,
                     transaction: SentTransaction) -> CareMessage: ...
    def open_message(self, *, reader: Address, ref: bytes) -> ContentStream: ...
    def patient_inbox(self, *, patient: Address) -> list[InboxItem]: ...
    def provider_inbox(self, *, provider: Address) -> list[InboxItem]: ...
    def answer_no(self, *, patient: Address, provider: Address,
                  transaction: SentTransaction) -> Confirmed: ...
    def confirm_appoint_guardian(self, *, patient: Address, guardian: Address,
                                 transaction: SentTransaction) -> Confirmed: ...
    def confirm_emergency_policy(self, *, patient: Address, allowed: bool, max_duration: int,
                                 transaction: SentTransaction) -> Confirmed: ...
    def confirm_break_glass(self, *, provider: Address, patient: Address,
                            transaction: SentTransaction) -> Confirmed: ...


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
        # The registry read is the service's rule, over any connection to the chain; imported
        # here, when a provider's key is needed, so a client's start does not load the service.
        from kizuna.services.grants import registry_key

        return registry_key(self.chain, provider)

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


__all__ = ["ChainDocuments", "Envelope", "KizunaService"]
