"""The consent ledger agent: typed views and transactions of ``ConsentLedger``.

Every transaction takes the signer as an argument (never a global). Each also has a ``*_call``
twin returning the unsigned :class:`ContractCall`, for an external wallet
(:meth:`Agent.wallet_request`) or for simulation. Patient actions take an optional ``patient``:
when it differs from the signer, the ``...For`` variant is used (the signer acts as guardian).
Signed (gasless) actions are built by the ``*_typed_data`` methods, signed by the patient, and
relayed by :class:`kizuna.chain.relayer.Relayer` through :meth:`ConsentLedgerAgent.by_sig_call`.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils.address import to_checksum_address
from web3.types import BlockIdentifier

from kizuna.chain.agents.base import Agent, as_bytes32, as_bytes32_list
from kizuna.chain.eip712 import (
    SignedAction,
    TypedData,
    grant_batch_typed_data,
    grant_typed_data,
    register_batch_typed_data,
    register_record_typed_data,
    revoke_typed_data,
)
from kizuna.chain.models import (
    BatchRecordStatus,
    BatchStatus,
    ContractCall,
    EmergencyPolicy,
    Grant,
    RecordStatus,
    TxReceipt,
)
from kizuna.chain.models import CareEventKind as Kind
from kizuna.chain.signers import Signer
from kizuna.errors import InputError
from kizuna.types import Address, Commitment, RecordId, ScopeId

ZERO_ADDRESS = to_checksum_address("0x" + "00" * 20)
ZERO32 = bytes(32)


class ConsentLedgerAgent(Agent):
    """``ConsentLedger``: records, grants, guardians, emergency access, care events."""

    contract_name = "ConsentLedger"

    # ========================================================================================
    # Calls
    # ========================================================================================

    def has_access(self, patient: Address, provider: Address, scope_id: ScopeId, *,
                   block: BlockIdentifier = "latest") -> bool:
        """True when ``provider`` may read ``scope_id`` of ``patient`` at ``block``."""
        return bool(self._view("hasAccess", patient, provider,
                               as_bytes32("scope_id", scope_id), block=block))

    def access_expiry(self, patient: Address, provider: Address, scope_id: ScopeId, *,
                      block: BlockIdentifier = "latest") -> int:
        """Until when (unix seconds, exclusive) the access lasts; 0 when there is none."""
        return int(self._view("accessExpiry", patient, provider,
                              as_bytes32("scope_id", scope_id), block=block))

    def grant_of(self, patient: Address, provider: Address, scope_id: ScopeId, *,
                 block: BlockIdentifier = "latest") -> Grant | None:
        """The stored grant (live or not), or ``None`` when there is none."""
        expires_at, granted_block, live = self._view(
            "grantOf", patient, provider, as_bytes32("scope_id", scope_id), block=block)
        if int(granted_block) == 0:
            return None
        return Grant(patient=to_checksum_address(patient), provider=to_checksum_address(provider),
                     scope_id=ScopeId(bytes(scope_id)), expires_at=int(expires_at),
                     granted_block=int(granted_block), live=bool(live))

    def revoked_all_block(self, patient: Address, provider: Address, *,
                          block: BlockIdentifier = "latest") -> int:
        return int(self._view("revokedAllBlock", patient, provider, block=block))

    def record_of(self, record_id: RecordId, *,
                  block: BlockIdentifier = "latest") -> RecordStatus | None:
        """Owner, registration time and superseded flag; ``None`` for an unknown id."""
        patient, registered_at, superseded = self._view(
            "recordOf", as_bytes32("record_id", record_id), block=block)
        if int(patient, 16) == 0:
            return None
        return RecordStatus(record_id=RecordId(bytes(record_id)),
                            patient=to_checksum_address(patient),
                            registered_at=int(registered_at), superseded=bool(superseded))

    def batch_of(self, root: bytes, *, block: BlockIdentifier = "latest") -> BatchStatus | None:
        """Owner, registration time and record count of the batch ``root``; ``None`` when no
        batch has that root."""
        patient, registered_at, count = self._view("batchOf", as_bytes32("root", root),
                                                   block=block)
        if int(patient, 16) == 0:
            return None
        return BatchStatus(patient=to_checksum_address(patient),
                           registered_at=int(registered_at), count=int(count))

    def batch_record_of(self, root: bytes, record_id: RecordId, *,
                        block: BlockIdentifier = "latest") -> BatchRecordStatus | None:
        """The batch ``root`` and whether its owner superseded ``record_id``; ``None`` when no
        batch has that root. That the record is in the batch is for a Merkle proof to say."""
        patient, registered_at, count, superseded = self._view(
            "batchRecordOf", as_bytes32("root", root), as_bytes32("record_id", record_id),
            block=block)
        if int(patient, 16) == 0:
            return None
        return BatchRecordStatus(patient=to_checksum_address(patient),
                                 registered_at=int(registered_at), count=int(count),
                                 superseded=bool(superseded))

    def guardian_until(self, patient: Address, guardian: Address, *,
                       block: BlockIdentifier = "latest") -> int:
        return int(self._view("guardianUntil", patient, guardian, block=block))

    def is_guardian(self, patient: Address, guardian: Address, *,
                    block: BlockIdentifier = "latest") -> bool:
        return bool(self._view("isGuardian", patient, guardian, block=block))

    def emergency_policy(self, patient: Address, *,
                         block: BlockIdentifier = "latest") -> EmergencyPolicy:
        allowed, max_duration = self._view("emergencyPolicy", patient, block=block)
        return EmergencyPolicy(allowed=bool(allowed), max_duration=int(max_duration))

    def emergency_access_until(self, patient: Address, provider: Address, *,
                               block: BlockIdentifier = "latest") -> int:
        return int(self._view("emergencyAccessUntil", patient, provider, block=block))

    def request_open_until(self, patient: Address, provider: Address, *,
                           block: BlockIdentifier = "latest") -> int:
        return int(self._view("requestOpenUntil", patient, provider, block=block))

    def nonce(self, patient: Address, *, block: BlockIdentifier = "latest") -> int:
        """The patient's next nonce for signed actions."""
        return int(self._view("nonces", patient, block=block))

    def domain_separator(self) -> bytes:
        return bytes(self._view("DOMAIN_SEPARATOR"))

    def request_ttl(self) -> int:
        return int(self._view("REQUEST_TTL"))

    def provider_registry(self) -> Address:
        return to_checksum_address(self._view("providerRegistry"))

    # ========================================================================================
    # Transactions
    # ========================================================================================

    def _for(self, plain: str, patient: Address | None, signer_address: Address | None,
             *args: object) -> ContractCall:
        """``plain(*args)``, or ``plainFor(patient, *args)`` when acting for someone else."""
        if patient is None or (signer_address is not None
                               and to_checksum_address(patient) == signer_address):
            return self._call(plain, *args)
        return self._call(plain + "For", to_checksum_address(patient), *args)

    # -- records -----------------------------------------------------------------------------

    def register_record_call(self, record_id: RecordId, commitment: Commitment,
                             scope_id: ScopeId, *, patient: Address | None = None,
                             sender: Address | None = None) -> ContractCall:
        return self._for("registerRecord", patient, sender, as_bytes32("record_id", record_id),
                         as_bytes32("commitment", commitment), as_bytes32("scope_id", scope_id))

    def register_record(self, record_id: RecordId, commitment: Commitment, scope_id: ScopeId,
                        *, signer: Signer, patient: Address | None = None) -> TxReceipt:
        """Register a record of the signer (or of ``patient``, the signer being a guardian)."""
        return self._send(self.register_record_call(record_id, commitment, scope_id,
                                                    patient=patient, sender=signer.address),
                          signer)

    def supersede_record_call(self, old_record_id: RecordId, new_record_id: RecordId,
                              commitment: Commitment, scope_id: ScopeId, *,
                              patient: Address | None = None,
                              sender: Address | None = None) -> ContractCall:
        return self._for("supersedeRecord", patient, sender,
                         as_bytes32("old_record_id", old_record_id),
                         as_bytes32("new_record_id", new_record_id),
                         as_bytes32("commitment", commitment), as_bytes32("scope_id", scope_id))

    def supersede_record(self, old_record_id: RecordId, new_record_id: RecordId,
                         commitment: Commitment, scope_id: ScopeId, *, signer: Signer,
                         patient: Address | None = None) -> TxReceipt:
        """Register ``new_record_id`` as the next version of ``old_record_id``."""
        return self._send(self.supersede_record_call(old_record_id, new_record_id, commitment,
                                                     scope_id, patient=patient,
                                                     sender=signer.address), signer)

    def register_batch_call(self, root: bytes, count: int, *, patient: Address | None = None,
                            sender: Address | None = None) -> ContractCall:
        """``registerBatch(root, count)`` (``registerBatchFor`` when acting for ``patient``)."""
        return self._for("registerBatch", patient, sender, as_bytes32("root", root),
                         _batch_count(count))

    def register_batch(self, root: bytes, count: int, *, signer: Signer,
                       patient: Address | None = None) -> TxReceipt:
        """Register ``count`` records of the signer (or of ``patient``, the signer being a
        guardian) under the Merkle ``root`` of their leaves (:mod:`kizuna.batch`)."""
        return self._send(self.register_batch_call(root, count, patient=patient,
                                                   sender=signer.address), signer)

    # -- grants ------------------------------------------------------------------------------

    def grant_call(self, provider: Address, scope_id: ScopeId, expires_at: int, *,
                   patient: Address | None = None,
                   sender: Address | None = None) -> ContractCall:
        return self._for("grant", patient, sender, to_checksum_address(provider),
                         as_bytes32("scope_id", scope_id), expires_at)

    def grant(self, provider: Address, scope_id: ScopeId, expires_at: int, *, signer: Signer,
              patient: Address | None = None) -> TxReceipt:
        """Grant ``provider`` access to ``scope_id`` until ``expires_at`` (unix seconds)."""
        return self._send(self.grant_call(provider, scope_id, expires_at, patient=patient,
                                          sender=signer.address), signer)

    def grant_batch_call(self, provider: Address, scope_ids: Sequence[ScopeId],
                         expires_at: int, *, patient: Address | None = None,
                         sender: Address | None = None) -> ContractCall:
        if not scope_ids:
            raise InputError("scope_ids", "a batch grant needs at least one scope")
        return self._for("grantBatch", patient, sender, to_checksum_address(provider),
                         as_bytes32_list("scope_ids", scope_ids), expires_at)

    def grant_batch(self, provider: Address, scope_ids: Sequence[ScopeId], expires_at: int, *,
                    signer: Signer, patient: Address | None = None) -> TxReceipt:
        """Grant several scopes at once (one event)."""
        return self._send(self.grant_batch_call(provider, scope_ids, expires_at,
                                                patient=patient, sender=signer.address), signer)

    def revoke_call(self, provider: Address, scope_id: ScopeId, *,
                    patient: Address | None = None,
                    sender: Address | None = None) -> ContractCall:
        return self._for("revoke", patient, sender, to_checksum_address(provider),
                         as_bytes32("scope_id", scope_id))

    def revoke(self, provider: Address, scope_id: ScopeId, *, signer: Signer,
               patient: Address | None = None) -> TxReceipt:
        """Revoke ``provider``'s grant on ``scope_id``."""
        return self._send(self.revoke_call(provider, scope_id, patient=patient,
                                           sender=signer.address), signer)

    def revoke_all_call(self, provider: Address, *, patient: Address | None = None,
                        sender: Address | None = None) -> ContractCall:
        return self._for("revokeAll", patient, sender, to_checksum_address(provider))

    def revoke_all(self, provider: Address, *, signer: Signer,
                   patient: Address | None = None) -> TxReceipt:
        """Revoke every grant, the open request and the emergency access of ``provider``."""
        return self._send(self.revoke_all_call(provider, patient=patient,
                                               sender=signer.address), signer)

    # -- guardians, emergency access, requests, care events ----------------------------------

    def appoint_guardian_call(self, guardian: Address, until: int) -> ContractCall:
        return self._call("appointGuardian", to_checksum_address(guardian), until)

    def appoint_guardian(self, guardian: Address, until: int, *, signer: Signer) -> TxReceipt:
        """The signer (a patient) appoints ``guardian`` until ``until``."""
        return self._send(self.appoint_guardian_call(guardian, until), signer)

    def remove_guardian_call(self, guardian: Address) -> ContractCall:
        return self._call("removeGuardian", to_checksum_address(guardian))

    def remove_guardian(self, guardian: Address, *, signer: Signer) -> TxReceipt:
        return self._send(self.remove_guardian_call(guardian), signer)

    def set_emergency_policy_call(self, allowed: bool, max_duration: int, *,
                                  patient: Address | None = None,
                                  sender: Address | None = None) -> ContractCall:
        return self._for("setEmergencyPolicy", patient, sender, allowed, max_duration)

    def set_emergency_policy(self, allowed: bool, max_duration: int, *, signer: Signer,
                             patient: Address | None = None) -> TxReceipt:
        return self._send(self.set_emergency_policy_call(allowed, max_duration, patient=patient,
                                                         sender=signer.address), signer)

    def open_emergency_access_call(self, patient: Address, duration: int,
                                   reason_code: int) -> ContractCall:
        return self._call("openEmergencyAccess", to_checksum_address(patient), duration,
                          reason_code)

    def open_emergency_access(self, patient: Address, duration: int, reason_code: int, *,
                              signer: Signer) -> TxReceipt:
        """A verified provider (the signer) breaks the glass for ``duration`` seconds."""
        return self._send(self.open_emergency_access_call(patient, duration, reason_code), signer)

    def close_emergency_access_call(self, patient: Address, provider: Address) -> ContractCall:
        return self._call("closeEmergencyAccess", to_checksum_address(patient),
                          to_checksum_address(provider))

    def close_emergency_access(self, patient: Address, provider: Address, *,
                               signer: Signer) -> TxReceipt:
        return self._send(self.close_emergency_access_call(patient, provider), signer)

    def request_access_call(self, patient: Address, ref: Commitment) -> ContractCall:
        return self._call("requestAccess", to_checksum_address(patient), as_bytes32("ref", ref))

    def request_access(self, patient: Address, ref: Commitment, *, signer: Signer) -> TxReceipt:
        """A verified provider (the signer) asks ``patient`` for access."""
        return self._send(self.request_access_call(patient, ref), signer)

    def close_request_call(self, patient: Address, provider: Address) -> ContractCall:
        return self._call("closeRequest", to_checksum_address(patient),
                          to_checksum_address(provider))

    def close_request(self, patient: Address, provider: Address, *, signer: Signer) -> TxReceipt:
        return self._send(self.close_request_call(patient, provider), signer)

    def log_care_event_call(self, patient: Address, kind: Kind, ref: Commitment, *,
                            provider: Address | None = None,
                            scope_id: ScopeId | None = None) -> ContractCall:
        return self._call("logCareEvent", to_checksum_address(patient), int(Kind(kind)),
                          as_bytes32("ref", ref),
                          to_checksum_address(provider) if provider else ZERO_ADDRESS,
                          as_bytes32("scope_id", scope_id) if scope_id is not None else ZERO32)

    def log_care_event(self, patient: Address, kind: Kind, ref: Commitment, *, signer: Signer,
                       provider: Address | None = None,
                       scope_id: ScopeId | None = None) -> TxReceipt:
        """Log a care event; a provider names itself and the granted scope that allows it."""
        return self._send(self.log_care_event_call(patient, kind, ref, provider=provider,
                                                   scope_id=scope_id), signer)

    def answer_data_request_call(self, patient: Address, request_id: bytes, kind: Kind,
                                 ref: Commitment) -> ContractCall:
        return self._call("answerDataRequest", to_checksum_address(patient),
                          as_bytes32("request_id", request_id), int(Kind(kind)),
                          as_bytes32("ref", ref))

    def answer_data_request(self, patient: Address, request_id: bytes, kind: Kind,
                            ref: Commitment, *, signer: Signer) -> TxReceipt:
        """The provider a data request names (the signer) logs an answer to it: the request is
        its authority, no grant needed (and none given)."""
        return self._send(self.answer_data_request_call(patient, request_id, kind, ref), signer)

    def data_request_of(self, patient: Address, request_id: bytes, *,
                        block: BlockIdentifier = "latest") -> tuple[Address | None, bool]:
        """The provider ``patient``'s data request ``request_id`` is addressed to (``None``:
        no such request) and whether it is closed (fulfilled or declined)."""
        provider, closed = self._view("dataRequestOf", to_checksum_address(patient),
                                      as_bytes32("request_id", request_id), block=block)
        to = to_checksum_address(provider)
        return (None if to == ZERO_ADDRESS else to), bool(closed)

    # ========================================================================================
    # Signed (gasless) actions
    # ========================================================================================

    def _nonce_for(self, patient: Address, nonce: int | None) -> int:
        return self.nonce(patient) if nonce is None else nonce

    def grant_typed_data(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                         expires_at: int, deadline: int, nonce: int | None = None) -> TypedData:
        """EIP-712 ``Grant`` for the patient to sign (nonce read from the chain if not given)."""
        return grant_typed_data(self.chain.ledger_domain, patient=patient, provider=provider,
                                scope_id=scope_id, expires_at=expires_at,
                                nonce=self._nonce_for(patient, nonce), deadline=deadline)

    def grant_batch_typed_data(self, *, patient: Address, provider: Address,
                               scope_ids: Sequence[ScopeId], expires_at: int, deadline: int,
                               nonce: int | None = None) -> TypedData:
        return grant_batch_typed_data(self.chain.ledger_domain, patient=patient,
                                      provider=provider, scope_ids=scope_ids,
                                      expires_at=expires_at,
                                      nonce=self._nonce_for(patient, nonce), deadline=deadline)

    def revoke_typed_data(self, *, patient: Address, provider: Address, scope_id: ScopeId,
                          deadline: int, nonce: int | None = None) -> TypedData:
        return revoke_typed_data(self.chain.ledger_domain, patient=patient, provider=provider,
                                 scope_id=scope_id, nonce=self._nonce_for(patient, nonce),
                                 deadline=deadline)

    def register_record_typed_data(self, *, patient: Address, record_id: RecordId,
                                   commitment: Commitment, scope_id: ScopeId, deadline: int,
                                   supersedes: RecordId | None = None,
                                   nonce: int | None = None) -> TypedData:
        return register_record_typed_data(self.chain.ledger_domain, patient=patient,
                                          record_id=record_id, commitment=commitment,
                                          scope_id=scope_id, supersedes=supersedes,
                                          nonce=self._nonce_for(patient, nonce),
                                          deadline=deadline)

    def register_batch_typed_data(self, *, patient: Address, root: bytes, count: int,
                                  deadline: int, nonce: int | None = None) -> TypedData:
        """EIP-712 ``RegisterBatch`` for the patient to sign (nonce read from the chain if not
        given)."""
        return register_batch_typed_data(self.chain.ledger_domain, patient=patient, root=root,
                                         count=count, nonce=self._nonce_for(patient, nonce),
                                         deadline=deadline)

    def by_sig_call(self, action: SignedAction) -> ContractCall:
        """The ``...BySig`` call that submits a patient's signed action (anyone may send it)."""
        m = action.typed.message
        if action.typed.domain != self.chain.ledger_domain:
            raise InputError("domain", "the action was signed for another chain or contract")

        def b32(key: str) -> bytes:
            return bytes.fromhex(str(m[key])[2:])

        deadline = int(m["deadline"])
        if action.kind == "Grant":
            return self._call("grantBySig", m["patient"], m["provider"], b32("scopeId"),
                              int(m["expiresAt"]), deadline, action.signature)
        if action.kind == "GrantBatch":
            return self._call("grantBatchBySig", m["patient"], m["provider"],
                              [bytes.fromhex(s[2:]) for s in m["scopeIds"]],
                              int(m["expiresAt"]), deadline, action.signature)
        if action.kind == "Revoke":
            return self._call("revokeBySig", m["patient"], m["provider"], b32("scopeId"),
                              deadline, action.signature)
        if action.kind == "RegisterBatch":
            return self._call("registerBatchBySig", m["patient"], b32("root"), int(m["count"]),
                              deadline, action.signature)
        return self._call("registerRecordBySig", m["patient"], b32("recordId"),
                          b32("commitment"), b32("scopeId"), b32("supersedes"), deadline,
                          action.signature)


def _batch_count(count: int) -> int:
    """A batch's record count as ``registerBatch`` takes it (a uint32, at least 1)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count < 2**32:
        raise InputError("count", f"{count!r} is not a batch size (1 to {2**32 - 1} records)")
    return count


__all__ = ["ConsentLedgerAgent"]
