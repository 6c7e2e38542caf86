"""Care messages on the wire: the message kinds, a patient's signed inbox key (and the one
check a sender makes before encrypting to it), and an announced message."""

from __future__ import annotations

from dataclasses import dataclass

from kizuna.chain.eip712 import Eip712Domain, TypedData
from kizuna.chain.models import CareEventKind
from kizuna.crypto import pre
from kizuna.errors import AccessDenied, InputError
from kizuna.signatures import recover_signable
from kizuna.types import Address, Cid, Commitment, checked_address

ACCESS_REQUEST = "access-request"
"""The ``kind`` of a message announced by ``requestAccess`` (not a care event)."""

CARE_KINDS: dict[str, CareEventKind] = {
    "advice-request": CareEventKind.ADVICE_REQUESTED,
    "booking-request": CareEventKind.BOOKING_REQUESTED,
    "booking-confirmation": CareEventKind.BOOKING_CONFIRMED,
    "booking-cancellation": CareEventKind.BOOKING_CANCELLED,
    "report": CareEventKind.VISIT_REPORTED,
    "prescription": CareEventKind.PRESCRIPTION_ISSUED,
    "data": CareEventKind.DATA_SENT,
}
"""Message kinds (the API's vocabulary) → the ledger's care event kinds."""

KIND_NAMES: dict[CareEventKind, str] = {v: k for k, v in CARE_KINDS.items()}


INBOX_KEY_FIELDS: tuple[tuple[str, str], ...] = (("patient", "address"), ("publicKey", "bytes"))


def inbox_key_typed_data(domain: Eip712Domain, *, patient: str,
                         public_key: bytes) -> TypedData:
    """The ``InboxKey`` document a patient's wallet signs to publish their inbox key, in
    ``domain`` (the proxy domain: ``Kizuna Proxy``, chain id, AccessLog). Built the same way by
    the service and by a sender checking a key (:meth:`InboxKey.verified_key`)."""
    key = pre.UmbralPublicKey.from_bytes(public_key, field="public_key")
    return TypedData(domain=domain, primary_type="InboxKey",
                     types={"InboxKey": INBOX_KEY_FIELDS},
                     message={"patient": checked_address("patient", patient),
                              "publicKey": "0x" + key.to_bytes().hex()})


class UntrustedKey(AccessDenied):
    """A key handed out for someone is not the key they signed (in our domain): a sender
    refuses to encrypt to it."""


@dataclass(frozen=True, slots=True)
class InboxKey:
    """A patient's inbox key with the signature that proves it is theirs (a sender can check).

    Over HTTP every field is the service's word: a sender takes the key only through
    :meth:`verified_key`, never ``public_key`` directly."""

    patient: Address
    public_key: pre.UmbralPublicKey
    signature: bytes
    statement: TypedData

    def verified_key(self, *, patient: Address, domain: Eip712Domain) -> pre.UmbralPublicKey:
        """The key to encrypt to for ``patient``: the one in their signed statement, checked
        against what the *sender* knows (``patient``: the address it means to write to;
        ``domain``: the proxy domain of its own chain id and deployment), not against what the
        answer claims. ``UntrustedKey`` saying what did not match:

        * the statement names ``patient`` (and the answer is about them), in ``domain``;
        * recovering the signature over the statement *rebuilt here* gives ``patient``;
        * ``public_key`` is the key in that statement (a front that swapped the key but left
          the patient's genuine statement in place is caught here).
        """
        who = checked_address("patient", patient)
        statement = self.statement
        if self.patient != who:
            raise UntrustedKey(f"asked for the inbox key of {who}, the service answered "
                               f"with one of {self.patient}")
        if statement.domain != domain:
            theirs = statement.domain
            raise UntrustedKey(
                f"the inbox key statement of {who} is for another deployment (domain "
                f"{theirs.name!r}, chain id {theirs.chain_id}, contract "
                f"{theirs.verifying_contract}), not ours (chain id {domain.chain_id}, "
                f"contract {domain.verifying_contract})")
        if (statement.primary_type != "InboxKey"
                or tuple(statement.types.get("InboxKey", ())) != INBOX_KEY_FIELDS
                or str(statement.message.get("patient", "")).lower() != who.lower()):
            raise UntrustedKey(f"the inbox key statement handed out for {who} is not an "
                               f"InboxKey statement of {who}")
        try:
            signed_key = pre.UmbralPublicKey.from_hex(
                str(statement.message.get("publicKey", "")), field="statement.publicKey")
            expected = inbox_key_typed_data(domain, patient=who,
                                            public_key=signed_key.to_bytes())
            signer = recover_signable(expected.signable(), self.signature)
        except InputError:
            raise UntrustedKey(f"the inbox key statement of {who} carries no valid key or "
                               "signature") from None
        if signer != who:
            raise UntrustedKey(f"the inbox key statement of {who} is signed by {signer}, "
                               "not by the patient")
        if self.public_key != signed_key:
            raise UntrustedKey(
                f"the service handed out inbox key 0x{self.public_key.to_bytes().hex()} for "
                f"{who}, but the key the patient signed is "
                f"0x{signed_key.to_bytes().hex()}: refusing to encrypt to it")
        return signed_key

    def verify(self) -> None:
        """``AccessDenied`` unless the statement is signed by the patient (checked by senders:
        the service could otherwise hand out a key of its own)."""
        try:
            signer = recover_signable(self.statement.signable(), self.signature)
        except InputError:
            raise AccessDenied(f"the inbox key of {self.patient} carries no valid "
                               "signature") from None
        if signer != self.patient:
            raise AccessDenied(f"the inbox key of {self.patient} is signed by {signer}")


@dataclass(frozen=True, slots=True)
class CareMessage:
    """An announced message: where its envelope is, who sent it to whom, and when."""

    ref: Commitment
    cid: Cid
    patient: Address
    provider: Address | None
    sender: Address
    kind: str
    content_type: str
    size: int
    tx_hash: bytes
    block_number: int
    created_at: int
