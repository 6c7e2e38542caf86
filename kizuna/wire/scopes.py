"""A patient's scope keys on the wire: the registered public keys of one scope and key epoch,
and the ``ScopeKeys`` statement the patient's wallet signs to bind them (proxy domain)."""

from __future__ import annotations

from dataclasses import dataclass

from kizuna.chain.eip712 import Eip712Domain, TypedData
from kizuna.crypto import pre
from kizuna.crypto.wallet_keys import checked_epoch
from kizuna.errors import InputError
from kizuna.types import Address, ScopeId, checksum_address

SCOPE_KEYS_FIELDS: tuple[tuple[str, str], ...] = (
    ("patient", "address"),
    ("scopeId", "bytes32"),
    ("epoch", "uint64"),
    ("delegatingKey", "bytes"),
    ("verifyingKey", "bytes"),
)


@dataclass(frozen=True, slots=True)
class ScopeKeys:
    """A patient's registered public keys for one scope in one key epoch."""

    patient: Address
    scope_id: ScopeId
    delegating_key: pre.UmbralPublicKey
    verifying_key: pre.UmbralPublicKey
    epoch: int = 0


def scope_keys_typed_data(domain: Eip712Domain, *, patient: Address, scope_id: bytes,
                          delegating_key: pre.UmbralPublicKey,
                          verifying_key: pre.UmbralPublicKey, epoch: int = 0) -> TypedData:
    """The statement the patient's wallet signs to bind their scope keys of one key epoch
    (proxy domain)."""
    if len(scope_id) != 32:
        raise InputError("scopeId", "must be exactly 32 bytes")
    return TypedData(domain=domain, primary_type="ScopeKeys",
                     types={"ScopeKeys": SCOPE_KEYS_FIELDS},
                     message={"patient": checksum_address(patient),
                              "scopeId": "0x" + bytes(scope_id).hex(),
                              "epoch": checked_epoch("epoch", epoch),
                              "delegatingKey": "0x" + delegating_key.to_bytes().hex(),
                              "verifyingKey": "0x" + verifying_key.to_bytes().hex()})
