"""Umbral proxy re-encryption (``umbral-pre``), behind types that make misuse hard.

The data path (docs/keys.md has the full picture)::

    patient:  capsule, wrapped = encrypt(patient_pk, data_key)          (envelope header)
    patient:  kfrags = generate_kfrags(patient_sk, provider_pk, signer, threshold=m, shares=n)
    proxy:    kfrag  = KeyFrag.from_bytes(b).verify(...)                 (VerifiedKeyFrag)
    proxy:    cfrag  = reencrypt(capsule, kfrag, grant=verified_grant)   (only with a VerifiedGrant)
    provider: cfrag  = CapsuleFrag.from_bytes(b).verify(...)             (VerifiedCapsuleFrag)
    provider: data_key = decrypt_reencrypted(provider_sk, patient_pk, capsule, cfrags, wrapped,
                                             threshold=m)

Design choices, following pyUmbral / rust-umbral:

* ``UmbralSecretKey`` is a :class:`~kizuna.crypto.secret.Secret`: it prints as
  ``UmbralSecretKey(pk=03ab…)``, refuses pickling and hashing.
* Fragments come in two types. ``KeyFrag`` / ``CapsuleFrag`` are what arrives over the wire;
  only their ``verify`` (or the functions that make them) produce ``VerifiedKeyFrag`` /
  ``VerifiedCapsuleFrag``, and the dangerous steps accept only the verified types.
* Key fragments are always signed over both the delegating and the receiving key, so a verified
  kfrag knows which patient and which grantee it belongs to; :func:`reencrypt` checks that the
  grantee is the one named in the :class:`~kizuna.access.grant.VerifiedGrant`.
* Every failure of the underlying library becomes a Kizuna error: :class:`MalformedCryptoData`
  for bytes that do not parse, :class:`~kizuna.errors.FragmentError` for fragments that fail
  verification or fall short of the threshold, :class:`~kizuna.errors.IntegrityError` when a
  ciphertext does not open.

The wrappers are thin on purpose: ``benchmarks/storage_crypto.py`` measures them against the bare
``umbral_pre`` calls (target: at least 90 % of the bare rate).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

import umbral_pre as _u
from umbral_pre import VerificationError as _VerificationError  # type: ignore[attr-defined]

from kizuna.access.grant import VerifiedGrant
from kizuna.crypto.secret import Secret
from kizuna.errors import AccessDenied, CryptoError, FragmentError, InputError, IntegrityError

PUBLIC_KEY_SIZE = 33
"""An Umbral (secp256k1) public key, SEC1 compressed."""

SECRET_KEY_SIZE = 32
MAX_SHARES = 255
"""More key fragments than this per grant make no sense for a handful of proxies."""

_pairing: ContextVar[bool] = ContextVar("kizuna_pre_pairing_kfrag", default=False)


class MalformedCryptoData(CryptoError, InputError):
    """Bytes that should hold a key, capsule or fragment do not parse. ``field`` names which."""


def _parse_error(field: str, error: Exception) -> MalformedCryptoData:
    return MalformedCryptoData(field, f"malformed ({error})")


# --- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class UmbralPublicKey:
    """An Umbral public key (secp256k1). 33 bytes compressed on the wire and in the registry."""

    _pk: _u.PublicKey
    _raw: bytes | None = field(default=None, repr=False)
    """The compressed form, once computed (a key travels in every read's answer)."""

    @classmethod
    def from_bytes(cls, data: bytes, *, field: str = "public_key") -> UmbralPublicKey:
        """Parse a 33-byte SEC1 compressed point; :class:`MalformedCryptoData` otherwise."""
        if not isinstance(data, bytes | bytearray) or len(data) != PUBLIC_KEY_SIZE:
            size = len(data) if isinstance(data, bytes | bytearray) else type(data).__name__
            raise MalformedCryptoData(field, f"expected {PUBLIC_KEY_SIZE} bytes, got {size}")
        try:
            return cls(_u.PublicKey.from_compressed_bytes(bytes(data)), bytes(data))
        except ValueError as error:
            raise MalformedCryptoData(field, f"not a point on secp256k1 ({error})") from None

    @classmethod
    def from_hex(cls, text: str, *, field: str = "public_key") -> UmbralPublicKey:
        try:
            raw = bytes.fromhex(text.removeprefix("0x"))
        except ValueError:
            raise MalformedCryptoData(field, "not hexadecimal") from None
        return cls.from_bytes(raw, field=field)

    def to_bytes(self) -> bytes:
        raw = self._raw
        if raw is None:
            raw = bytes(self._pk.to_compressed_bytes())
            object.__setattr__(self, "_raw", raw)
        return raw

    def hex(self) -> str:
        return self.to_bytes().hex()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UmbralPublicKey):
            return NotImplemented
        return bool(self._pk == other._pk)

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"UmbralPublicKey({self.hex()})"


class UmbralSecretKey(Secret):
    """An Umbral secret key. Never printed, logged, pickled or hashed (see ``Secret``)."""

    __slots__ = ("_pk", "_sk")

    def __init__(self, sk: _u.SecretKey) -> None:
        if not isinstance(sk, _u.SecretKey):
            raise TypeError(f"UmbralSecretKey wraps umbral_pre.SecretKey, not {type(sk).__name__}")
        self._sk = sk
        self._pk = UmbralPublicKey(sk.public_key())

    @classmethod
    def random(cls) -> UmbralSecretKey:
        return cls(_u.SecretKey.random())

    @classmethod
    def from_secret_bytes(cls, data: bytes) -> UmbralSecretKey:
        """A scalar in [1, n-1], 32 bytes big-endian (as a keystore stores it)."""
        if not isinstance(data, bytes | bytearray) or len(data) != SECRET_KEY_SIZE:
            raise MalformedCryptoData("secret_key", f"expected {SECRET_KEY_SIZE} bytes")
        try:
            return cls(_u.SecretKey.from_be_bytes(bytes(data)))
        except ValueError:
            # Deliberately not echoing the library message: it could one day quote the input.
            raise MalformedCryptoData("secret_key", "not a valid secp256k1 scalar") from None

    def to_secret_bytes(self) -> bytes:
        """Export the 32-byte scalar (for an encrypted keystore). Greppable on purpose."""
        return bytes(self._sk.to_be_bytes())

    @property
    def public_key(self) -> UmbralPublicKey:
        return self._pk

    def _public_hint(self) -> str:
        return f"pk={self._pk.hex()[:16]}..."


class UmbralSigner(Secret):
    """Signs key fragments (a wrapper of ``umbral_pre.Signer`` over a separate signing key)."""

    __slots__ = ("_signer", "_verifying_key")

    def __init__(self, signing_key: UmbralSecretKey) -> None:
        self._signer = _u.Signer(signing_key._sk)
        self._verifying_key = UmbralPublicKey(self._signer.verifying_key())

    @property
    def verifying_key(self) -> UmbralPublicKey:
        return self._verifying_key

    def _public_hint(self) -> str:
        return f"verifying_key={self._verifying_key.hex()[:16]}..."


# --- capsules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Capsule:
    """The encapsulated key of one Umbral ciphertext (lives in the envelope header)."""

    _capsule: _u.Capsule
    _raw: bytes | None = field(default=None, repr=False)
    """The serialised form, once computed (a capsule travels in every read's answer)."""

    @classmethod
    def from_bytes(cls, data: bytes, *, field: str = "capsule") -> Capsule:
        try:
            return cls(_u.Capsule.from_bytes(bytes(data)), bytes(data))
        except ValueError as error:
            raise _parse_error(field, error) from None

    def to_bytes(self) -> bytes:
        raw = self._raw
        if raw is None:
            raw = bytes(self._capsule)
            object.__setattr__(self, "_raw", raw)
        return raw

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Capsule):
            return NotImplemented
        return bool(self._capsule == other._capsule)

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"Capsule({self.to_bytes().hex()[:16]}...)"


def encrypt(owner_key: UmbralPublicKey, plaintext: bytes) -> tuple[Capsule, bytes]:
    """Encrypt (a data key) to ``owner_key``: the capsule and the ciphertext, both public."""
    capsule, ciphertext = _u.encrypt(owner_key._pk, plaintext)
    return Capsule(capsule), ciphertext


def decrypt_original(owner_sk: UmbralSecretKey, capsule: Capsule, ciphertext: bytes) -> bytes:
    """Open what :func:`encrypt` made, with the owner's own secret key."""
    try:
        return bytes(_u.decrypt_original(owner_sk._sk, capsule._capsule, ciphertext))
    except ValueError:
        raise IntegrityError(
            "the data key does not open: wrong secret key, or the capsule or wrapped key was "
            "tampered with"
        ) from None


# --- key fragments ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class KeyFrag:
    """A key fragment as received (unverified). Call :meth:`verify` before using it."""

    _kfrag: _u.KeyFrag

    @classmethod
    def from_bytes(cls, data: bytes, *, field: str = "kfrag") -> KeyFrag:
        try:
            return cls(_u.KeyFrag.from_bytes(bytes(data)))
        except ValueError as error:
            raise _parse_error(field, error) from None

    def to_bytes(self) -> bytes:
        return bytes(self._kfrag)

    def verify(
        self,
        *,
        verifying_key: UmbralPublicKey,
        delegating_key: UmbralPublicKey,
        receiving_key: UmbralPublicKey,
    ) -> VerifiedKeyFrag:
        """Check the patient's signature over this fragment and both keys it binds."""
        try:
            verified = self._kfrag.verify(verifying_key._pk, delegating_key._pk, receiving_key._pk)
        except _VerificationError as error:
            raise FragmentError(f"key fragment failed verification: {error}") from None
        token = _pairing.set(True)
        try:
            return VerifiedKeyFrag(verified, delegating_key, receiving_key)
        finally:
            _pairing.reset(token)

    def __repr__(self) -> str:
        return f"KeyFrag({self.to_bytes().hex()[:16]}...)"


@dataclass(frozen=True, slots=True, eq=False)
class VerifiedKeyFrag:
    """A key fragment whose signature was checked, with the keys it was checked against.

    Made only by :func:`generate_kfrags` and :meth:`KeyFrag.verify`. Bytes for the wire:
    :meth:`to_bytes` (the receiver parses them as a :class:`KeyFrag` and verifies again).
    """

    _kfrag: _u.VerifiedKeyFrag
    delegating_key: UmbralPublicKey
    receiving_key: UmbralPublicKey

    def __post_init__(self) -> None:
        # The keys are what reencrypt checks the grantee against: only this module, which has
        # just verified (or made) the fragment with exactly these keys, may pair them.
        if not _pairing.get():
            raise TypeError("a VerifiedKeyFrag comes from generate_kfrags or KeyFrag.verify")

    def to_bytes(self) -> bytes:
        return bytes(self._kfrag)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifiedKeyFrag):
            return NotImplemented
        return bool(self._kfrag == other._kfrag)

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"VerifiedKeyFrag(to={self.receiving_key.hex()[:16]}...)"


def generate_kfrags(
    delegating_sk: UmbralSecretKey,
    receiving_key: UmbralPublicKey,
    signer: UmbralSigner,
    *,
    threshold: int,
    shares: int,
) -> tuple[VerifiedKeyFrag, ...]:
    """Split the right to open ``delegating_sk``'s capsules for ``receiving_key`` into ``shares``
    fragments, any ``threshold`` of which suffice. Signed over both keys (always)."""
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise InputError("threshold", f"must be an integer >= 1, got {threshold!r}")
    if isinstance(shares, bool) or not isinstance(shares, int) or not 1 <= shares <= MAX_SHARES:
        raise InputError("shares", f"must be an integer in [1, {MAX_SHARES}], got {shares!r}")
    if threshold > shares:
        raise InputError("threshold", f"{threshold} is more than the {shares} shares")
    kfrags = _u.generate_kfrags(
        delegating_sk._sk, receiving_key._pk, signer._signer, threshold, shares, True, True
    )
    delegating_key = delegating_sk.public_key
    token = _pairing.set(True)
    try:
        return tuple(VerifiedKeyFrag(k, delegating_key, receiving_key) for k in kfrags)
    finally:
        _pairing.reset(token)


# --- re-encryption ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class CapsuleFrag:
    """A capsule fragment as received from a proxy (unverified)."""

    _cfrag: _u.CapsuleFrag

    @classmethod
    def from_bytes(cls, data: bytes, *, field: str = "cfrag") -> CapsuleFrag:
        try:
            return cls(_u.CapsuleFrag.from_bytes(bytes(data)))
        except ValueError as error:
            raise _parse_error(field, error) from None

    def to_bytes(self) -> bytes:
        return bytes(self._cfrag)

    def verify(
        self,
        *,
        capsule: Capsule,
        verifying_key: UmbralPublicKey,
        delegating_key: UmbralPublicKey,
        receiving_key: UmbralPublicKey,
    ) -> VerifiedCapsuleFrag:
        """Check the proxy's proof of correct re-encryption of ``capsule``."""
        try:
            verified = self._cfrag.verify(
                capsule._capsule, verifying_key._pk, delegating_key._pk, receiving_key._pk
            )
        except _VerificationError as error:
            raise FragmentError(f"capsule fragment failed verification: {error}") from None
        return VerifiedCapsuleFrag(verified)

    def __repr__(self) -> str:
        return f"CapsuleFrag({self.to_bytes().hex()[:16]}...)"


@dataclass(frozen=True, slots=True, eq=False)
class VerifiedCapsuleFrag:
    """A capsule fragment made by :func:`reencrypt` or checked by :meth:`CapsuleFrag.verify`."""

    _cfrag: _u.VerifiedCapsuleFrag

    def to_bytes(self) -> bytes:
        return bytes(self._cfrag)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifiedCapsuleFrag):
            return NotImplemented
        return bool(self._cfrag == other._cfrag)

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"VerifiedCapsuleFrag({self.to_bytes().hex()[:16]}...)"


def reencrypt(
    capsule: Capsule, kfrag: VerifiedKeyFrag, *, grant: VerifiedGrant
) -> VerifiedCapsuleFrag:
    """Re-encrypt ``capsule`` for the grantee, as a proxy. Accepts only a ``VerifiedGrant``.

    Refuses (``AccessDenied``) a stale decision or a grant expired since the access check made
    it (``VerifiedGrant.check_usable``), and a ``kfrag`` made for another key than the grant's
    grantee key.
    """
    if type(grant) is not VerifiedGrant:
        raise TypeError(
            f"reencrypt needs a VerifiedGrant from the access check, not {type(grant).__name__}"
        )
    if not isinstance(kfrag, VerifiedKeyFrag):
        raise TypeError(f"reencrypt needs a VerifiedKeyFrag, not {type(kfrag).__name__}")
    grant.check_usable()
    if kfrag.receiving_key != grant.grantee_key:
        raise AccessDenied(f"the key fragment was not made for the grantee {grant.grantee}")
    return VerifiedCapsuleFrag(_u.reencrypt(capsule._capsule, kfrag._kfrag))


def decrypt_reencrypted(
    receiving_sk: UmbralSecretKey,
    delegating_key: UmbralPublicKey,
    capsule: Capsule,
    cfrags: Sequence[VerifiedCapsuleFrag],
    ciphertext: bytes,
    *,
    threshold: int,
) -> bytes:
    """Open ``ciphertext`` as the grantee from at least ``threshold`` distinct capsule fragments.

    Fewer fragments than ``threshold`` is a :class:`FragmentError` before any cryptography
    runs; the same fragment given twice, or fragments that do not combine (from another
    delegation, or too few for the threshold the kfrags were really made with) are a
    ``FragmentError`` too; a ciphertext that does not open with the combined key (tampered) an
    ``IntegrityError``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise InputError("threshold", f"must be an integer >= 1, got {threshold!r}")
    fragments = []
    for cfrag in cfrags:
        if type(cfrag) is not VerifiedCapsuleFrag:
            raise TypeError(f"expected VerifiedCapsuleFrag, got {type(cfrag).__name__}")
        fragments.append(cfrag._cfrag)
    if len(fragments) < threshold:
        raise FragmentError(f"{threshold} capsule fragments are needed, {len(fragments)} given")
    try:
        plaintext = _u.decrypt_reencrypted(
            receiving_sk._sk, delegating_key._pk, capsule._capsule, fragments, ciphertext
        )
    except ValueError as error:
        message = str(error)
        if "repeated" in message:
            raise FragmentError(
                "some capsule fragments are repeated: each must come from a different kfrag"
            ) from None
        if "Re-encryption error" in message:
            raise FragmentError(
                "the capsule fragments do not open the capsule for this key: too few for the "
                "delegation's threshold, from different delegations, or a wrong receiving key"
            ) from None
        raise IntegrityError(
            "the data key does not open: wrong receiving key, or the capsule or wrapped key was "
            "tampered with"
        ) from None
    if plaintext is None:
        raise FragmentError("the capsule fragments did not open the capsule")
    return bytes(plaintext)


def verify_kfrags(
    kfrags: Iterable[bytes],
    *,
    verifying_key: UmbralPublicKey,
    delegating_key: UmbralPublicKey,
    receiving_key: UmbralPublicKey,
) -> tuple[VerifiedKeyFrag, ...]:
    """Parse and verify serialized key fragments (what a proxy does when it receives them)."""
    return tuple(
        KeyFrag.from_bytes(raw, field=f"kfrags[{i}]").verify(
            verifying_key=verifying_key, delegating_key=delegating_key, receiving_key=receiving_key
        )
        for i, raw in enumerate(kfrags)
    )


def verify_cfrags(
    cfrags: Iterable[bytes],
    *,
    capsule: Capsule,
    verifying_key: UmbralPublicKey,
    delegating_key: UmbralPublicKey,
    receiving_key: UmbralPublicKey,
) -> tuple[VerifiedCapsuleFrag, ...]:
    """Parse and verify serialized capsule fragments (what a grantee does with a proxy's answer)."""
    return tuple(
        CapsuleFrag.from_bytes(raw, field=f"cfrags[{i}]").verify(
            capsule=capsule,
            verifying_key=verifying_key,
            delegating_key=delegating_key,
            receiving_key=receiving_key,
        )
        for i, raw in enumerate(cfrags)
    )


__all__ = [
    "PUBLIC_KEY_SIZE",
    "Capsule",
    "CapsuleFrag",
    "KeyFrag",
    "MalformedCryptoData",
    "UmbralPublicKey",
    "UmbralSecretKey",
    "UmbralSigner",
    "VerifiedCapsuleFrag",
    "VerifiedKeyFrag",
    "decrypt_original",
    "decrypt_reencrypted",
    "encrypt",
    "generate_kfrags",
    "reencrypt",
    "verify_cfrags",
    "verify_kfrags",
]
