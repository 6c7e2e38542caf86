"""Signer recovery: the one home of "who signed this digest" (EIP-712 and EIP-191 alike).

One malleability rule, the contracts' (OpenZeppelin ``ECDSA.recover``): a signature is 65 bytes
``r ‖ s ‖ v`` with ``v`` in {27, 28} or {0, 1}, ``0 < r < n`` and ``0 < s ≤ n/2`` (EIP-2: high-s
twins are refused, so each signed statement has one signature). Anything else is an
:class:`~kizuna.errors.InputError` on ``signature``; a well-formed signature from which no key
recovers is an :class:`UnrecoverableSignature` (an ``InputError`` too), never a crash.

Recovery runs through coincurve's public API (libsecp256k1), about 4x faster than
``Account.recover_message``. :class:`SignerCheck` is the audit's fast path for many
signatures by few signers: the first signature of an address is recovered, the key kept, and
later ones are *verified* against it (about half the cost of a recovery). Both refuse what
the rule refuses; the one difference: verification cannot see ``v``'s parity, so a cached
signer's ``(r, s)`` with the other ``v`` (which would recover to another address) passes the
fast path. It is still that signer's signature of that digest (nobody else can make it), and
a stored receipt's leaf hashes the signature as stored, so it cannot stand in for another.

A top-level module (like :mod:`kizuna.types`) because both :mod:`kizuna.chain` (the relayer,
wallets) and :mod:`kizuna.crypto` (wallet-derived keys) call it, and crypto sits above chain
(``tests/test_package_graph.py``): it imports nothing of Kizuna but errors, types and hashing.
"""

from __future__ import annotations

from functools import lru_cache

from coincurve import PublicKey
from eth_account.messages import SignableMessage
from eth_utils.address import to_checksum_address

from kizuna.errors import InputError
from kizuna.hashing import keccak
from kizuna.types import Address

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The order of secp256k1's group."""
HALF_N = SECP256K1_N // 2
_V = frozenset((0, 1, 27, 28))


class UnrecoverableSignature(InputError):
    """A well-formed signature from which no public key recovers (e.g. ``r`` not on the curve)."""

    def __init__(self) -> None:
        super().__init__("signature", "recovers to no key")


def split_signature(signature: bytes) -> tuple[bytes, int]:
    """``(r ‖ s, recovery id 0/1)`` of a signature that follows the rule, or ``InputError``."""
    if not isinstance(signature, bytes | bytearray):
        raise InputError("signature", f"must be bytes, not {type(signature).__name__}")
    if len(signature) != 65:
        raise InputError("signature", f"must be 65 bytes (r, s, v), got {len(signature)}")
    v = signature[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise InputError("signature", f"v must be 27 or 28 (or 0, 1), got {signature[64]}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < r < SECP256K1_N:
        raise InputError("signature", "r out of range")
    if not 0 < s <= HALF_N:
        raise InputError("signature", "s out of range (high-s signatures are refused, EIP-2)")
    return bytes(signature[:64]), v


def recover_key(digest: bytes, signature: bytes) -> PublicKey:
    """The public key that signed the 32-byte ``digest`` (``InputError`` otherwise)."""
    compact, v = split_signature(signature)
    try:
        return PublicKey.from_signature_and_message(compact + bytes([v]), digest, hasher=None)
    except ValueError:
        raise UnrecoverableSignature() from None


def key_address(key: PublicKey) -> bytes:
    """The 20-byte Ethereum address of a public key."""
    return keccak(key.format(compressed=False)[1:])[12:]


@lru_cache(maxsize=65_536)
def _checksummed(raw: bytes) -> Address:
    # A checksum costs a keccak; the read path recovers the same few providers over and over.
    return to_checksum_address(raw)


def recover_address(digest: bytes, signature: bytes) -> Address:
    """The checksummed address that signed the 32-byte ``digest``."""
    return _checksummed(key_address(recover_key(digest, signature)))


def signable_digest(signable: SignableMessage) -> bytes:
    """The digest an EIP-191 / EIP-712 ``SignableMessage`` is signed over."""
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def recover_signable(signable: SignableMessage, signature: bytes) -> Address:
    """The checksummed address that signed ``signable`` (e.g. ``TypedData.signable()``)."""
    return recover_address(signable_digest(signable), signature)


def _der(compact: bytes) -> bytes:
    """DER encoding of ``r ‖ s`` (what coincurve's public ``verify`` takes)."""
    body = b""
    for half in (compact[:32], compact[32:]):
        value = half.lstrip(b"\0") or b"\0"
        if value[0] & 0x80:
            value = b"\0" + value
        body += b"\x02" + bytes([len(value)]) + value
    return b"\x30" + bytes([len(body)]) + body


class SignerCheck:
    """``is_signed_by`` for many signatures by few signers (the audit's receipts), fast."""

    def __init__(self) -> None:
        self._keys: dict[bytes, PublicKey] = {}

    def signer(self, digest: bytes, signature: bytes, address: bytes) -> bytes:
        """The 20-byte signer of ``digest``; the result equals ``address`` iff it signed.

        ``InputError`` (``UnrecoverableSignature``) as :func:`recover_key`.
        """
        key = self._keys.get(address)
        # libsecp256k1's verify itself refuses r or s out of range and high s; v is checked here
        if (key is not None and len(signature) == 65 and signature[64] in _V
                and key.verify(_der(signature[:64]), digest, hasher=None)):
            return address
        recovered = recover_key(digest, signature)  # the rule's errors, or a new signer
        signer = key_address(recovered)
        if signer == address:
            self._keys[address] = recovered
        return signer


__all__ = [
    "HALF_N",
    "SECP256K1_N",
    "SignerCheck",
    "UnrecoverableSignature",
    "key_address",
    "recover_address",
    "recover_key",
    "recover_signable",
    "signable_digest",
    "split_signature",
]
