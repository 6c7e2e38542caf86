"""Access requests: a verified provider asks a patient for access; the patient answers.

The request itself is a message (:mod:`kizuna.services.care`, kind ``access-request``): the
provider encrypts a note to the patient's inbox key, sends ``requestAccess(patient, ref)`` with
``ref`` = the note's envelope commitment, and hands the envelope and the transaction hash to
:func:`request_access`. The patient answers *yes* with a grant (:func:`answer_yes` =
:func:`kizuna.services.grants.grant_access`; the ledger closes the request) or *no* with
``closeRequest`` (:func:`answer_no`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO

from kizuna.services import care
from kizuna.services.grants import grant_access
from kizuna.services.guardians import _confirm
from kizuna.services.onchain import checked_address, checked_bytes32, prepare
from kizuna.types import Commitment
from kizuna.wire.care import ACCESS_REQUEST, CareMessage
from kizuna.wire.consent import Confirmed, GrantResult
from kizuna.wire.onchain import PreparedAction, SentTransaction

if TYPE_CHECKING:
    from kizuna.services.context import ServiceContext


def request_access(ctx: ServiceContext, *, provider: str, patient: str, message_id: bytes,
                   envelope: bytes | bytearray | memoryview | BinaryIO | Iterable[bytes],
                   transaction: SentTransaction) -> CareMessage:
    """Accept a provider's access request: its note stored, ``AccessRequested`` checked."""
    return care.send_message(ctx, sender=provider, patient=patient, provider=provider,
                             kind=ACCESS_REQUEST, message_id=message_id,
                             envelope=envelope, transaction=transaction)


def prepare_request(ctx: ServiceContext, *, provider: str, patient: str,
                    ref: bytes) -> PreparedAction:
    """For the provider's wallet: ``requestAccess(patient, ref)``."""
    call = ctx.chain.ledger.request_access_call(checked_address("patient", patient),
                                               Commitment(checked_bytes32("ref", ref)))
    return prepare(ctx.chain, call, sender=checked_address("provider", provider))


answer_yes = grant_access
"""Saying yes is granting: any grant to the provider closes its open request on chain
(``AccessRequestClosed``, closed by the patient), so a later revoke leaves no request authority."""


def prepare_answer_no(ctx: ServiceContext, *, patient: str, provider: str,
                      sender: str | None = None) -> PreparedAction:
    """For the patient's (or the provider's, withdrawing) wallet: ``closeRequest``."""
    owner = checked_address("patient", patient)
    call = ctx.chain.ledger.close_request_call(owner, checked_address("provider", provider))
    return prepare(ctx.chain, call,
                   sender=checked_address("sender", sender) if sender is not None else owner)


def answer_no(ctx: ServiceContext, *, patient: str, provider: str,
              transaction: SentTransaction) -> Confirmed:
    """The patient declined: ``AccessRequestClosed`` checked."""
    return _confirm(ctx, transaction, "AccessRequestClosed", {
        "patient": checked_address("patient", patient),
        "provider": checked_address("provider", provider)})


__all__ = ["GrantResult", "answer_no", "answer_yes", "prepare_answer_no", "prepare_request",
           "request_access"]
