"""Guardians, emergency policy and break-glass access on the service side.

These actions have no gasless form on the ledger: the participant's wallet (or the CLI with its
own key, through the agents) sends the transaction. The service prepares it for a wallet
(``prepare_*``: ``eth_sendTransaction`` params, simulated first so a revert is reported before
anything is signed) and confirms it (``confirm_*``: the receipt awaited, the event checked), so
the caller learns the outcome from the chain, not from the hash it was handed.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from kizuna.chain.models import Guardian
from kizuna.errors import AccessDenied, InputError
from kizuna.services.onchain import checked_address, prepare, require_event, wait_for
from kizuna.wire.consent import Confirmed
from kizuna.wire.onchain import PreparedAction, SentTransaction

if TYPE_CHECKING:
    from kizuna.services.context import ServiceContext


def _confirm(ctx: ServiceContext, transaction: SentTransaction, event: str,
             expected: dict[str, Any]) -> Confirmed:
    if not isinstance(transaction, SentTransaction):
        raise InputError("txHash", "this action is confirmed by the hash of the sent transaction")
    receipt = wait_for(ctx.chain, transaction)
    found = require_event(ctx.chain, receipt, event, expected=expected)
    return Confirmed(event=event, args=dict(found.args), tx_hash=receipt.tx_hash,
                     block_number=receipt.block_number)


# --- guardians --------------------------------------------------------------------------------


def prepare_appoint_guardian(ctx: ServiceContext, *, patient: str, guardian: str,
                             until: int) -> PreparedAction:
    call = ctx.chain.ledger.appoint_guardian_call(checked_address("guardian", guardian), until)
    return prepare(ctx.chain, call, sender=checked_address("patient", patient))


def confirm_appoint_guardian(ctx: ServiceContext, *, patient: str, guardian: str,
                             transaction: SentTransaction) -> Confirmed:
    return _confirm(ctx, transaction, "GuardianAppointed", {
        "patient": checked_address("patient", patient),
        "guardian": checked_address("guardian", guardian)})


def prepare_remove_guardian(ctx: ServiceContext, *, patient: str,
                            guardian: str) -> PreparedAction:
    call = ctx.chain.ledger.remove_guardian_call(checked_address("guardian", guardian))
    return prepare(ctx.chain, call, sender=checked_address("patient", patient))


def confirm_remove_guardian(ctx: ServiceContext, *, patient: str, guardian: str,
                            transaction: SentTransaction) -> Confirmed:
    return _confirm(ctx, transaction, "GuardianRemoved", {
        "patient": checked_address("patient", patient),
        "guardian": checked_address("guardian", guardian)})


def guardians_of(ctx: ServiceContext, *, patient: str) -> list[Guardian]:
    """The patient's live guardians, as of the chain head."""
    fresh = ctx.index
    head = fresh.head()
    return fresh.index.guardians_of(checked_address("patient", patient), at=head)


# --- emergency --------------------------------------------------------------------------------


def prepare_emergency_policy(ctx: ServiceContext, *, patient: str, allowed: bool,
                             max_duration: int, sender: str | None = None) -> PreparedAction:
    """``setEmergencyPolicy`` (``...For`` when ``sender`` is a guardian of ``patient``)."""
    owner = checked_address("patient", patient)
    from_ = checked_address("sender", sender) if sender is not None else owner
    call = ctx.chain.ledger.set_emergency_policy_call(allowed, max_duration, patient=owner,
                                                      sender=from_)
    return prepare(ctx.chain, call, sender=from_)


def confirm_emergency_policy(ctx: ServiceContext, *, patient: str, allowed: bool,
                             max_duration: int, transaction: SentTransaction) -> Confirmed:
    return _confirm(ctx, transaction, "EmergencyPolicySet", {
        "patient": checked_address("patient", patient), "allowed": allowed,
        "maxDuration": max_duration})


def prepare_break_glass(ctx: ServiceContext, *, provider: str, patient: str, duration: int,
                        reason_code: int) -> PreparedAction:
    """``openEmergencyAccess`` for a verified provider (simulated: a patient whose policy does
    not allow it, or a too long duration, is refused here with the ledger's error)."""
    call = ctx.chain.ledger.open_emergency_access_call(checked_address("patient", patient),
                                                       duration, reason_code)
    return prepare(ctx.chain, call, sender=checked_address("provider", provider))


def confirm_break_glass(ctx: ServiceContext, *, provider: str, patient: str,
                        transaction: SentTransaction) -> Confirmed:
    """The emergency access is open on chain: the provider's part of the patient's emergency
    kit (if any) goes to the proxy (``kizuna.services.emergency``)."""
    from kizuna.services.emergency import open_kit

    confirmed = _confirm(ctx, transaction, "EmergencyAccessOpened", {
        "patient": checked_address("patient", patient),
        "provider": checked_address("provider", provider)})
    with contextlib.suppress(AccessDenied):  # already over again: nothing to hand over
        open_kit(ctx, patient=patient, provider=provider)
    return confirmed


__all__ = [
    "confirm_appoint_guardian",
    "confirm_break_glass",
    "confirm_emergency_policy",
    "confirm_remove_guardian",
    "guardians_of",
    "prepare_appoint_guardian",
    "prepare_break_glass",
    "prepare_emergency_policy",
    "prepare_remove_guardian",
]
