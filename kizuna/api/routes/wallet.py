"""Wallet routes: every on-chain action prepared for a browser wallet — an unsigned
transaction (``eth_sendTransaction`` params, simulated first) and, for the ledger's gasless
actions, the EIP-712 document (``eth_signTypedData_v4``) — then confirmed from the wallet's
transaction hash, or relayed from the signature (the service pays the gas). The CLI signs the
very same actions locally.

A guardian prepares and confirms a ward's grant, revoke, revoke-all and emergency policy with
``?patient=ADDRESS`` (:data:`~kizuna.api.deps.ActingPatient`: only a live guardian on chain):
the transaction is then the ``...For`` form sent from the guardian's wallet, with no typed data
(a guardian's signature cannot stand for the patient's)."""

from __future__ import annotations

from fastapi import APIRouter

from kizuna.api.convert import hexed, shaped, unhex
from kizuna.api.deps import ActingPatient, CurrentSession, ProviderSession, State
from kizuna.api.errors import error_responses
from kizuna.api.schemas import (
    ConfirmBreakGlassIn,
    ConfirmDeclineIn,
    ConfirmedOut,
    ConfirmEmergencyPolicyIn,
    ConfirmGuardianIn,
    PrepareAccessRequestIn,
    PrepareBatchRegistrationIn,
    PrepareBreakGlassIn,
    PrepareDeclineIn,
    PreparedOut,
    PrepareEmergencyPolicyIn,
    PrepareGrantIn,
    PrepareGuardianIn,
    PrepareRegistrationIn,
    PrepareRemoveGuardianIn,
    PrepareRevokeAllIn,
    PrepareRevokeIn,
    PrepareStudyConsentIn,
    PrepareStudyWithdrawalIn,
    SignedActionIn,
    TxOut,
)
from kizuna.chain.eip712 import SignedAction, TypedData
from kizuna.errors import AccessDenied, ConfigError, InputError
from kizuna.services import batches as batch_service
from kizuna.services import grants as grant_service
from kizuna.services import guardians as guardian_service
from kizuna.services import records as record_service
from kizuna.services import requests as request_service
from kizuna.services.onchain import prepare
from kizuna.types import ScopeId
from kizuna.wire.consent import Confirmed
from kizuna.wire.onchain import PreparedAction, SentTransaction

router = APIRouter(prefix="/wallet", tags=["wallet"])

_PREPARE = error_responses(401, 403, 409, 422, 503)


def _out(prepared: PreparedAction) -> PreparedOut:
    return PreparedOut(action=prepared.action, transaction=prepared.transaction,
                       typed_data=prepared.typed_data)


@router.post("/prepare/register-record", response_model=PreparedOut, responses=_PREPARE)
def prepare_registration(body: PrepareRegistrationIn, session: CurrentSession,
                         state: State) -> PreparedOut:
    """``registerRecord`` for the patient's wallet (or its RegisterRecord typed data); with
    ``supersedes``, ``supersedeRecord`` (a new version of that record)."""
    return _out(record_service.prepare_registration(
        state.ctx, patient=session.address, record_id=unhex("record_id", body.record_id),
        commitment=unhex("commitment", body.commitment),
        scope_id=unhex("scope_id", body.scope_id), deadline=body.deadline,
        supersedes=unhex("supersedes", body.supersedes) if body.supersedes else None))


@router.post("/prepare/register-batch", response_model=PreparedOut, responses=_PREPARE)
def prepare_batch_registration(body: PrepareBatchRegistrationIn, session: CurrentSession,
                               state: State) -> PreparedOut:
    """``registerBatch`` for the patient's wallet (or its RegisterBatch typed data): many
    staged records under one Merkle root, one transaction; then ``POST /patient/batches``."""
    return _out(batch_service.prepare_batch_registration(
        state.ctx, patient=session.address, root=unhex("root", body.root), count=body.count,
        deadline=body.deadline))


@router.post("/prepare/grant", response_model=PreparedOut, responses=_PREPARE)
def prepare_grant(body: PrepareGrantIn, session: CurrentSession, patient: ActingPatient,
                  state: State) -> PreparedOut:
    """``grant`` / ``grantBatch`` (or its Grant / GrantBatch typed data)."""
    return _out(grant_service.prepare_grant(
        state.ctx, patient=patient, provider=body.provider,
        scope_ids=[unhex("scope_ids", s) for s in body.scope_ids], expires_at=body.expires_at,
        deadline=body.deadline, sender=session.address))


@router.post("/prepare/revoke", response_model=PreparedOut, responses=_PREPARE)
def prepare_revoke(body: PrepareRevokeIn, session: CurrentSession, patient: ActingPatient,
                   state: State) -> PreparedOut:
    """``revoke`` (or its Revoke typed data)."""
    return _out(grant_service.prepare_revoke(
        state.ctx, patient=patient, provider=body.provider,
        scope_id=unhex("scope_id", body.scope_id), deadline=body.deadline,
        sender=session.address))


@router.post("/prepare/revoke-all", response_model=PreparedOut, responses=_PREPARE)
def prepare_revoke_all(body: PrepareRevokeAllIn, session: CurrentSession,
                       patient: ActingPatient, state: State) -> PreparedOut:
    """``revokeAll(provider)``: every grant, request and emergency access of the pair."""
    return _out(grant_service.prepare_revoke_all(state.ctx, patient=patient,
                                                 provider=body.provider,
                                                 sender=session.address))


@router.post("/prepare/remove-guardian", response_model=PreparedOut, responses=_PREPARE)
def prepare_remove_guardian(body: PrepareRemoveGuardianIn, session: CurrentSession,
                            state: State) -> PreparedOut:
    """``removeGuardian(guardian)``."""
    return _out(guardian_service.prepare_remove_guardian(state.ctx, patient=session.address,
                                                         guardian=body.guardian))


@router.post("/prepare/appoint-guardian", response_model=PreparedOut, responses=_PREPARE)
def prepare_guardian(body: PrepareGuardianIn, session: CurrentSession,
                     state: State) -> PreparedOut:
    """``appointGuardian(guardian, until)``."""
    return _out(guardian_service.prepare_appoint_guardian(
        state.ctx, patient=session.address, guardian=body.guardian, until=body.until))


@router.post("/prepare/emergency-policy", response_model=PreparedOut, responses=_PREPARE)
def prepare_policy(body: PrepareEmergencyPolicyIn, session: CurrentSession,
                   patient: ActingPatient, state: State) -> PreparedOut:
    """``setEmergencyPolicy(allowed, maxDuration)``."""
    return _out(guardian_service.prepare_emergency_policy(
        state.ctx, patient=patient, allowed=body.allowed,
        max_duration=body.max_duration, sender=session.address))


@router.post("/prepare/break-glass", response_model=PreparedOut, responses=_PREPARE)
def prepare_break_glass(body: PrepareBreakGlassIn, session: ProviderSession,
                        state: State) -> PreparedOut:
    """A provider's ``openEmergencyAccess`` (allowed by the patient's policy; always flagged)."""
    return _out(guardian_service.prepare_break_glass(
        state.ctx, provider=session.address, patient=body.patient, duration=body.duration,
        reason_code=body.reason_code))


@router.post("/prepare/access-request", response_model=PreparedOut, responses=_PREPARE)
def prepare_request(body: PrepareAccessRequestIn, session: ProviderSession,
                    state: State) -> PreparedOut:
    """A provider's ``requestAccess(patient, ref)``."""
    return _out(request_service.prepare_request(
        state.ctx, provider=session.address, patient=body.patient, ref=unhex("ref", body.ref)))


@router.post("/prepare/decline-request", response_model=PreparedOut, responses=_PREPARE)
def prepare_decline(body: PrepareDeclineIn, session: CurrentSession,
                    state: State) -> PreparedOut:
    """The patient's ``closeRequest`` answering a provider's access request with no."""
    return _out(request_service.prepare_answer_no(state.ctx, patient=session.address,
                                                  provider=body.provider))


@router.post("/prepare/study-consent", response_model=PreparedOut, responses=_PREPARE)
def prepare_study_consent(body: PrepareStudyConsentIn, session: CurrentSession,
                          state: State) -> PreparedOut:
    """The patient's research consent to a study: ``consent(studyId, scopeId)`` for the
    wallet, and its StudyConsent typed data to sign instead and send to ``POST /wallet/relay``
    (the service pays the gas). The study's researcher must hold a live grant of the scope
    (the study copy's) first; the registry checks it, and so does the simulation here."""
    studies = state.ctx.chain.studies
    study_id = unhex("study_id", body.study_id)
    scope_id = ScopeId(unhex("scope_id", body.scope_id))
    typed = studies.consent_typed_data(patient=session.address, study_id=study_id,
                                       scope_id=scope_id, deadline=body.deadline)
    return _out(prepare(state.ctx.chain, studies.consent_call(study_id, scope_id),
                        sender=session.address, typed=typed))


@router.post("/prepare/study-withdrawal", response_model=PreparedOut, responses=_PREPARE)
def prepare_study_withdrawal(body: PrepareStudyWithdrawalIn, session: CurrentSession,
                             state: State) -> PreparedOut:
    """The patient's withdrawal from a study: ``withdraw(studyId)`` for the wallet, and its
    StudyWithdrawal typed data to sign instead and send to ``POST /wallet/relay`` (the
    service pays the gas: withdrawing needs no ether, as consenting does not). Its own route,
    as each contract action has one: a withdrawal names no scope, and a typed body per action
    keeps every field required. The consent must be current (the simulation checks it); the
    ledger grant is revoked first with its own route."""
    studies = state.ctx.chain.studies
    study_id = unhex("study_id", body.study_id)
    typed = studies.withdrawal_typed_data(patient=session.address, study_id=study_id,
                                          deadline=body.deadline)
    return _out(prepare(state.ctx.chain, studies.withdraw_call(study_id),
                        sender=session.address, typed=typed))


_CONFIRM = error_responses(401, 403, 409, 422, 503)


@router.post("/confirm/decline-request", response_model=ConfirmedOut, responses=_CONFIRM)
def confirm_decline(body: ConfirmDeclineIn, session: CurrentSession,
                    state: State) -> ConfirmedOut:
    """Wait for the wallet's ``closeRequest`` and check its event."""
    return _confirmed(request_service.answer_no(
        state.ctx, patient=session.address, provider=body.provider,
        transaction=SentTransaction.parse(body.tx_hash)))


def _confirmed(done: Confirmed) -> ConfirmedOut:
    return shaped(ConfirmedOut, done)


@router.post("/confirm/appoint-guardian", response_model=ConfirmedOut, responses=_CONFIRM)
def confirm_guardian(body: ConfirmGuardianIn, session: CurrentSession,
                     state: State) -> ConfirmedOut:
    """Wait for the wallet's ``appointGuardian`` and check its event."""
    return _confirmed(guardian_service.confirm_appoint_guardian(
        state.ctx, patient=session.address, guardian=body.guardian,
        transaction=SentTransaction.parse(body.tx_hash)))


@router.post("/confirm/remove-guardian", response_model=ConfirmedOut, responses=_CONFIRM)
def confirm_remove_guardian(body: ConfirmGuardianIn, session: CurrentSession,
                            state: State) -> ConfirmedOut:
    """Wait for the wallet's ``removeGuardian`` and check its event."""
    return _confirmed(guardian_service.confirm_remove_guardian(
        state.ctx, patient=session.address, guardian=body.guardian,
        transaction=SentTransaction.parse(body.tx_hash)))


@router.post("/confirm/emergency-policy", response_model=ConfirmedOut, responses=_CONFIRM)
def confirm_policy(body: ConfirmEmergencyPolicyIn, patient: ActingPatient,
                   state: State) -> ConfirmedOut:
    """Wait for the wallet's ``setEmergencyPolicy`` (a guardian's ``...For``) and check its
    event."""
    return _confirmed(guardian_service.confirm_emergency_policy(
        state.ctx, patient=patient, allowed=body.allowed,
        max_duration=body.max_duration, transaction=SentTransaction.parse(body.tx_hash)))


@router.post("/confirm/break-glass", response_model=ConfirmedOut, responses=_CONFIRM)
def confirm_break_glass(body: ConfirmBreakGlassIn, session: ProviderSession,
                        state: State) -> ConfirmedOut:
    """Wait for the provider wallet's ``openEmergencyAccess`` and check its event."""
    return _confirmed(guardian_service.confirm_break_glass(
        state.ctx, provider=session.address, patient=body.patient,
        transaction=SentTransaction.parse(body.tx_hash)))


@router.post("/relay", response_model=TxOut,
             responses=error_responses(401, 403, 409, 422, 429, 503))
def relay(body: SignedActionIn, session: CurrentSession, state: State) -> TxOut:
    """Relay one of the signed-in patient's EIP-712 actions (the service pays gas).
    Grants and uploads have their own routes (they carry key fragments or content); this one
    is for actions that need nothing else, such as a Revoke or a study registry's
    StudyConsent or StudyWithdrawal. 429 with ``Retry-After`` when
    the relayer's gas budget for the wallet today (``relayer_gas_per_day``) is used up:
    nothing is sent (the wallet can still send the transaction itself)."""
    if state.relayer is None:
        raise ConfigError("this instance has no relayer key (KIZUNA_RELAYER_KEY)")
    try:
        typed = TypedData.from_json(body.typed_data)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("typed_data", f"not EIP-712 typed data: {exc}") from None
    action = SignedAction(typed=typed, signature=unhex("signature", body.signature))
    if action.patient != session.address:
        raise AccessDenied("the signed action is another patient's")
    if action.kind in ("Grant", "GrantBatch", "RegisterRecord"):
        raise InputError("typed_data", f"send a {action.kind} with its route (it carries "
                         "key fragments or content)")
    receipt = state.relayer.relay(action)
    return TxOut(tx_hash=hexed(receipt.tx_hash), block_number=receipt.block_number)
