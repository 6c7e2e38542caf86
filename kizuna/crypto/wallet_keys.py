"""Wallet-derived keys: a participant's Umbral keys and scope key from one wallet signature.

The wallet signs a fixed EIP-712 message (``eth_signTypedData_v4``)::

    domain  = {name: "Kizuna", version: "1", chainId, verifyingContract: <ConsentLedger>}
    type    = KeyDerivation(string purpose,address account)
    message = {purpose: PURPOSE, account: <the signing account>}

and every key follows from the signature ``(r, s, v)`` with HKDF-SHA256 (RFC 5869)::

    ikm  = r || s                       (32 + 32 bytes; s normalised to the low half, v dropped)
    salt = b"kizuna/wallet-keys/v1"
    decrypting key = to_scalar(HKDF(ikm, salt, info=b"kizuna/v1/umbral-decrypting-key", 48))
    signing key    = to_scalar(HKDF(ikm, salt, info=b"kizuna/v1/umbral-signing-key", 48))
    scope key      =           HKDF(ikm, salt, info=b"kizuna/v1/scope-blinding-key", 32)
    to_scalar(b)   = int.from_bytes(b, "big") mod (n - 1) + 1      (FIPS 186-4 B.4.1; n = secp256k1
                                                                    order; bias < 2^-128)

Why it works across the CLI and the browser: ECDSA signatures by eth-account and by MetaMask are
deterministic (RFC 6979, no extra entropy), so the same wallet signing the same typed data gives
the same ``(r, s)`` every time, and the derivation above uses only HKDF, big-integer arithmetic
and ``SecretKey.from_be_bytes`` -- all available identically in Python (``cryptography``,
``umbral-pre``) and JavaScript (``node:crypto`` / WebCrypto, ``@nucypher/umbral-pre``). It does
not depend on umbral-pre's ``SecretKeyFactory`` KDF, so a library upgrade cannot silently change
anyone's keys. ``tests/vectors/wallet_keys.json`` pins the results; ``tests/node/`` re-derives
them with ethers v6. docs/keys.md has the whole story, including what it does not protect against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.address import is_address, to_checksum_address

from kizuna.crypto.pre import UmbralPublicKey, UmbralSecretKey, UmbralSigner
from kizuna.crypto.scopes import ScopeKey
from kizuna.crypto.secret import Secret, SecretBytes
from kizuna.errors import InputError, KeyDerivationError
from kizuna.signatures import recover_signable, signable_digest
from kizuna.types import Address, ScopeId

DOMAIN_NAME = "Kizuna"
DOMAIN_VERSION = "1"
PURPOSE = (
    "Kizuna: derive my encryption keys for my health records. Sign this only in Kizuna: "
    "whoever holds this signature can read my records."
)
"""The fixed text the wallet shows. Changing one character changes every derived key."""

KEY_DERIVATION_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "KeyDerivation": [
        {"name": "purpose", "type": "string"},
        {"name": "account", "type": "address"},
    ],
}

HKDF_SALT = b"kizuna/wallet-keys/v1"
INFO_DECRYPTING_KEY = b"kizuna/v1/umbral-decrypting-key"
INFO_SIGNING_KEY = b"kizuna/v1/umbral-signing-key"
INFO_SCOPE_KEY = b"kizuna/v1/scope-blinding-key"
INFO_SCOPE_DELEGATION = b"kizuna/scope-delegation/v1"
"""HKDF info prefix of a scope's delegating key; the 32-byte scope id follows it (and, from
epoch 1 on, the epoch as 8 bytes big-endian)."""
INFO_IMPORT_IDS = b"kizuna/import-record-ids/v1"
"""HKDF info of the key an import's record ids are made with (:func:`derive_import_id_key`)."""

MAX_EPOCH = 2**64 - 1
"""Epochs are ``uint64`` (the ``ScopeKeys`` statement's type)."""

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = SECP256K1_ORDER // 2


@dataclass(frozen=True, slots=True)
class KeyDerivationDomain:
    """Where the derived keys belong: one chain id and one Kizuna ConsentLedger contract."""

    chain_id: int
    verifying_contract: Address

    def __post_init__(self) -> None:
        if isinstance(self.chain_id, bool) or not isinstance(self.chain_id, int):
            raise InputError("chain_id", "must be an integer")
        if self.chain_id <= 0:
            raise InputError("chain_id", f"must be positive, got {self.chain_id}")
        if not isinstance(self.verifying_contract, str) or not is_address(self.verifying_contract):
            raise InputError("verifying_contract", "not an Ethereum address")
        object.__setattr__(self, "verifying_contract", to_checksum_address(self.verifying_contract))


def key_derivation_typed_data(*, account: str, domain: KeyDerivationDomain) -> dict[str, Any]:
    """The full EIP-712 document to sign (``eth_signTypedData_v4`` / eth-account's
    ``full_message``). The browser builds the identical object (see docs/keys.md)."""
    if not isinstance(account, str) or not is_address(account):
        raise InputError("account", "not an Ethereum address")
    return {
        "types": KEY_DERIVATION_TYPES,
        "primaryType": "KeyDerivation",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": domain.chain_id,
            "verifyingContract": domain.verifying_contract,
        },
        "message": {"purpose": PURPOSE, "account": to_checksum_address(account)},
    }


def _signable(account: str, domain: KeyDerivationDomain) -> SignableMessage:
    return encode_typed_data(full_message=key_derivation_typed_data(account=account, domain=domain))


def sign_key_derivation(private_key: bytes | str, *, domain: KeyDerivationDomain) -> bytes:
    """Sign the key-derivation message with a local private key (CLI keystore, tests)."""
    account = Account.from_key(private_key)
    signed = account.sign_message(_signable(account.address, domain))
    return bytes(signed.signature)


class WalletKeys(Secret):
    """A participant's keys derived from their wallet: Umbral decrypting key (records are
    encrypted to its public key), Umbral signing key (signs key fragments), scope key (blinds
    scope labels). Never printed, pickled or hashed."""

    __slots__ = ("_account", "_decrypting_key", "_scope_key", "_signing_key")

    def __init__(
        self,
        *,
        account: Address,
        decrypting_key: UmbralSecretKey,
        signing_key: UmbralSecretKey,
        scope_key: ScopeKey,
    ) -> None:
        self._account = account
        self._decrypting_key = decrypting_key
        self._signing_key = signing_key
        self._scope_key = scope_key

    @property
    def account(self) -> Address:
        return self._account

    @property
    def decrypting_key(self) -> UmbralSecretKey:
        return self._decrypting_key

    @property
    def signing_key(self) -> UmbralSecretKey:
        return self._signing_key

    @property
    def scope_key(self) -> ScopeKey:
        return self._scope_key

    @property
    def public_key(self) -> UmbralPublicKey:
        """What others encrypt to (published in the provider registry for providers)."""
        return self._decrypting_key.public_key

    @property
    def verifying_key(self) -> UmbralPublicKey:
        """What proxies and grantees check key fragments against."""
        return self._signing_key.public_key

    def signer(self) -> UmbralSigner:
        return UmbralSigner(self._signing_key)

    def scope_delegating_key(self, scope_id: ScopeId, epoch: int = 0) -> UmbralSecretKey:
        """The delegating key of one scope in one epoch (docs/keys.md "Epochs"); records of
        the scope written in that epoch are encrypted to its public key and grants of the
        scope delegate it."""
        return derive_scope_delegating_key(self._decrypting_key, scope_id, epoch)

    def import_id_key(self) -> ImportIdKey:
        """The key the import pipeline makes its record ids with (:func:`derive_import_id_key`)."""
        return derive_import_id_key(self._decrypting_key)

    def _public_hint(self) -> str:
        return f"account={self._account}, pk={self.public_key.hex()[:16]}..."


def derive_wallet_keys(
    *, signature: bytes, account: str, domain: KeyDerivationDomain
) -> WalletKeys:
    """Derive ``account``'s keys from its signature over the key-derivation message.

    The signature must recover to ``account`` (``KeyDerivationError`` otherwise: a signature by
    another wallet, over another message, domain or chain, or a smart-contract wallet's
    non-ECDSA signature). High-s signatures and ``v`` in {0, 1, 27, 28} are accepted and
    normalised, so every wallet's encoding of the same signature gives the same keys.
    """
    if not isinstance(account, str) or not is_address(account):
        raise InputError("account", "not an Ethereum address")
    checksummed = to_checksum_address(account)
    r, s, v = _split_signature(signature)
    if s > _HALF_ORDER:
        s, v = SECP256K1_ORDER - s, v ^ 1
    canonical = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + v])
    try:
        recovered = recover_signable(_signable(checksummed, domain), canonical)
    except InputError as error:  # canonical is low-s: only "recovers to no key" is left
        raise KeyDerivationError(f"signature does not recover to any account: {error}") from None
    if recovered != checksummed:
        raise KeyDerivationError(
            f"signature is by {recovered}, not by {checksummed} "
            f"(or over another message, chain id {domain.chain_id} or contract)"
        )
    ikm = canonical[:64]
    return WalletKeys(
        account=checksummed,
        decrypting_key=_scalar_key(ikm, INFO_DECRYPTING_KEY),
        signing_key=_scalar_key(ikm, INFO_SIGNING_KEY),
        scope_key=ScopeKey(_hkdf(ikm, INFO_SCOPE_KEY, 32)),
    )


def derive_wallet_keys_with_private_key(
    private_key: bytes | str, *, domain: KeyDerivationDomain
) -> WalletKeys:
    """Sign and derive in one step with a local key (the CLI's keystore path)."""
    account = Account.from_key(private_key)
    signature = sign_key_derivation(private_key, domain=domain)
    return derive_wallet_keys(signature=signature, account=account.address, domain=domain)


def checked_epoch(field: str, value: object) -> int:
    """``value`` as an epoch (an integer in ``[0, 2**64)``), or ``InputError`` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(field, "must be an integer")
    if not 0 <= value <= MAX_EPOCH:
        raise InputError(field, f"must be between 0 and {MAX_EPOCH}, got {value}")
    return value


def derive_scope_delegating_key(decrypting_key: UmbralSecretKey, scope_id: ScopeId,
                                epoch: int = 0) -> UmbralSecretKey:
    """``to_scalar(HKDF(ikm = decrypting key's 32-byte scalar, salt = HKDF_SALT,
    info = b"kizuna/scope-delegation/v1" || scope_id [|| epoch as uint64 big-endian], 48))``:
    one delegating key per (patient, scope, epoch), so kfrags for a scope open only that
    scope's records of that epoch.

    Epoch 0 has no suffix: it is exactly the key of before epochs existed, so records and
    fragments made then stay valid. Every epoch is derived from the wallet's decrypting key,
    never from the key of the epoch before: whoever learnt one epoch's scope secret (a kept key
    fragment plus its grantee's secret key gives it) learns nothing of the next.

    Deterministic: the patient re-derives every scope key from the wallet, nothing is stored.
    """
    if not isinstance(scope_id, bytes | bytearray) or len(scope_id) != 32:
        raise InputError("scope_id", "must be exactly 32 bytes")
    epoch = checked_epoch("epoch", epoch)
    info = INFO_SCOPE_DELEGATION + bytes(scope_id)
    if epoch:
        info += epoch.to_bytes(8, "big")
    return _scalar_key(decrypting_key.to_secret_bytes(), info)


class ImportIdKey(SecretBytes):
    """The 32-byte key of a participant's import record ids. Secret: never printed, pickled
    or hashed."""

    __slots__ = ()
    SIZE = 32


def derive_import_id_key(decrypting_key: UmbralSecretKey) -> ImportIdKey:
    """``HKDF-SHA256(ikm = decrypting key's 32-byte scalar, salt = HKDF_SALT,
    info = b"kizuna/import-record-ids/v1", 32)``: the key of the import pipeline's record ids
    (``HMAC-SHA256(key, bundle digest || resource index)``, :mod:`kizuna.client.importer`).
    Deterministic, so a re-run of an import names the same records and finds what is done;
    secret, so an id says nothing to anyone else about the bundle or the index."""
    return ImportIdKey(_hkdf(decrypting_key.to_secret_bytes(), INFO_IMPORT_IDS, 32))


def key_derivation_digest(*, account: str, domain: KeyDerivationDomain) -> bytes:
    """The 32-byte EIP-712 digest the wallet signs (for test vectors and debugging)."""
    return signable_digest(_signable(account, domain))


def _split_signature(signature: bytes) -> tuple[int, int, int]:
    if not isinstance(signature, bytes | bytearray):
        raise KeyDerivationError(f"signature must be bytes, not {type(signature).__name__}")
    if len(signature) != 65:
        raise KeyDerivationError(f"signature must be 65 bytes (r, s, v), got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise KeyDerivationError(f"signature v must be 0, 1, 27 or 28, got {signature[64]}")
    if not (0 < r < SECP256K1_ORDER and 0 < s < SECP256K1_ORDER):
        raise KeyDerivationError("signature r or s out of range")
    return r, s, v


def _hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=HKDF_SALT, info=info).derive(ikm)


def _scalar_key(ikm: bytes, info: bytes) -> UmbralSecretKey:
    candidate = int.from_bytes(_hkdf(ikm, info, 48), "big")
    scalar = candidate % (SECP256K1_ORDER - 1) + 1
    return UmbralSecretKey.from_secret_bytes(scalar.to_bytes(32, "big"))


__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "INFO_IMPORT_IDS",
    "MAX_EPOCH",
    "PURPOSE",
    "ImportIdKey",
    "KeyDerivationDomain",
    "WalletKeys",
    "checked_epoch",
    "derive_import_id_key",
    "derive_scope_delegating_key",
    "derive_wallet_keys",
    "derive_wallet_keys_with_private_key",
    "key_derivation_digest",
    "key_derivation_typed_data",
    "sign_key_derivation",
]
