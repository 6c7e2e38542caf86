"""Kizuna's one exception tree.

Every error Kizuna raises on purpose is a ``KizunaError``. The tree::

    KizunaError
    ├── ConfigError                 configuration missing, malformed or unsafe
    ├── InputError                  bad input: which field, and why
    │   └── FhirValidationError     FHIR resource or Bundle invalid (path + reason per issue)
    ├── NotFoundError               a named thing does not exist (record, deployment, file)
    ├── ConflictError               the thing exists already (record id taken, ...)
    ├── AccessDenied                no live grant / not the owner / not authorised
    │   ├── NoGrant, GrantRevoked, GrantExpired    a read refused: why (kizuna.access.check)
    │   ├── RecordSuperseded, WrongPatient, BatchProofInvalid
    │   └── ProviderNotRegistered
    │       └── ProviderSuspended
    ├── QuotaExceeded               a wallet's storage quota or daily relayer gas budget is used
    ├── ChainError                  talking to Ethereum
    │   ├── NodeUnreachable         the JSON-RPC endpoint does not answer
    │   ├── WrongChain              the node is on another chain id than expected
    │   ├── DeploymentError         no Kizuna contract where the deployment says
    │   └── TransactionError        a transaction could not be sent or did not succeed
    │       ├── InsufficientFunds
    │       ├── NonceTooLow
    │       ├── TransactionTimeout
    │       └── ContractReverted    a revert, decoded: custom error name + arguments
    ├── SignerError                 a signer could not sign
    │   └── KeystoreError           keystore missing, corrupted, or wrong passphrase
    ├── CryptoError                 keys, capsules, fragments
    │   ├── KeyDerivationError
    │   ├── FragmentError           kfrag / cfrag failed verification, threshold not met
    │   └── EnvelopeError           envelope format or integrity
    │       ├── EnvelopeFormatError unknown magic / version / malformed header
    │       └── IntegrityError      tampered, truncated, reordered, swapped or wrong key
    └── StorageError                content stores (embedded, IPFS node)
        ├── InvalidCid
        ├── ContentNotFound
        ├── StoreUnavailable        the store (e.g. IPFS node) cannot be reached
        └── StoreProtocolError      the store answered something we cannot understand

Subsystems define narrower classes *below* these (never beside ``KizunaError``), and the API
maps this tree to HTTP status codes in one place (``kizuna.api.errors``). An error answer names
its class (``kind``); the Python client rebuilds the classes defined here and in
``kizuna.wire`` (:func:`kizuna.client.http.api_error`), and a narrower class defined elsewhere
as its status's base class. So a class a client should tell apart over HTTP lives here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class KizunaError(Exception):
    """Root of every error Kizuna raises on purpose."""


class ConfigError(KizunaError):
    """Configuration is missing, malformed, or unsafe for this environment."""


class InputError(KizunaError):
    """Input was rejected. ``field`` names where, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class FhirValidationError(InputError):
    """A FHIR resource or Bundle is invalid. ``issues`` holds every (path, reason) found."""

    def __init__(self, issues: Sequence[tuple[str, str]]) -> None:
        if not issues:
            raise ValueError("FhirValidationError needs at least one issue")
        self.issues: tuple[tuple[str, str], ...] = tuple(issues)
        first_path, first_reason = self.issues[0]
        super().__init__(first_path, first_reason)
        more = len(self.issues) - 1
        if more:
            self.args = (f"{first_path}: {first_reason} (and {more} more)",)


class NotFoundError(KizunaError):
    """A named thing (record, deployment file, provider, ...) does not exist."""


class ConflictError(KizunaError):
    """The thing being created exists already."""


class AccessDenied(KizunaError):
    """The caller may not do this: no live grant, not the owner, or not authorised."""


# --- why the access check refused a read (kizuna.access.check raises them; here so that a
# client of the API rebuilds them from an error answer's ``kind``) ------------------------------


class NoGrant(AccessDenied):
    """The provider never held a grant of this scope (and no emergency access is open)."""


class GrantRevoked(AccessDenied):
    """The grant was revoked (``revoke`` or ``revokeAll``)."""


class GrantExpired(AccessDenied):
    """The grant's expiry has passed."""


class RecordSuperseded(AccessDenied):
    """The record was replaced by a newer version; read that one."""


class ProviderNotRegistered(AccessDenied):
    """The reader is not in the provider registry (or its registered key is not valid)."""


class ProviderSuspended(ProviderNotRegistered):
    """The reader is in the provider registry but suspended: no read, by grant or emergency."""


class WrongPatient(AccessDenied):
    """The request names another patient than the record's owner."""


class BatchProofInvalid(AccessDenied):
    """The record's Merkle proof (the service's row) does not lead to the root of the batch the
    row names: the row's scope or commitment is not what the patient registered."""


class QuotaExceeded(KizunaError):
    """A wallet used up a quota: ``quota`` names which (``records``, ``bytes``,
    ``relayer_gas``), ``limit`` and ``used`` say how far. ``retry_after`` is the number of
    seconds until the quota resets (the daily gas budget), ``None`` when waiting never helps
    (stored records and bytes stay until an operator raises the quota)."""

    def __init__(self, quota: str, *, limit: int, used: int, message: str,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.quota = quota
        self.limit = limit
        self.used = used
        self.retry_after = retry_after


# --- chain -----------------------------------------------------------------------------------


class ChainError(KizunaError):
    """Talking to the Ethereum node failed."""


class NodeUnreachable(ChainError):
    """The JSON-RPC endpoint does not answer."""


class WrongChain(ChainError):
    """The node is on another chain than the deployment or configuration expects."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"node is on chain id {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


class DeploymentError(ChainError):
    """No (or the wrong) Kizuna contract at the configured address, or a bad deployment file."""


class TransactionError(ChainError):
    """A transaction could not be sent or did not succeed."""


class InsufficientFunds(TransactionError):
    """The sender cannot pay for gas (and value)."""


class NonceTooLow(TransactionError):
    """The node has already seen a transaction with this nonce from this sender."""


class TransactionTimeout(TransactionError):
    """No receipt within the configured time."""


class ContractReverted(TransactionError):
    """A call or transaction reverted. ``name`` is the custom error, ``args`` its arguments."""

    def __init__(
        self, name: str, args: Mapping[str, Any] | None = None, *, data: bytes = b""
    ) -> None:
        self.name = name
        self.error_args: dict[str, Any] = dict(args or {})
        self.data = data
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.error_args.items())
        super().__init__(f"{name}({shown})")


def _short(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value)


# --- signing ---------------------------------------------------------------------------------


class SignerError(KizunaError):
    """A signer could not sign."""


class KeystoreError(SignerError):
    """An encrypted keystore is missing, corrupted, or the passphrase is wrong."""


# --- cryptography ----------------------------------------------------------------------------


class CryptoError(KizunaError):
    """Keys, capsules, key fragments or capsule fragments."""


class KeyDerivationError(CryptoError):
    """A key could not be derived (e.g. a malformed wallet signature)."""


class FragmentError(CryptoError):
    """A key fragment or capsule fragment failed verification, or too few were given."""


class EnvelopeError(CryptoError):
    """An encrypted envelope could not be read."""


class EnvelopeFormatError(EnvelopeError):
    """Unknown magic or version, or a malformed header."""


class IntegrityError(EnvelopeError):
    """Authentication failed: tampered, truncated, reordered, swapped, or the wrong key."""


# --- storage ---------------------------------------------------------------------------------


class StorageError(KizunaError):
    """A content store failed."""


class InvalidCid(StorageError, InputError):
    """A string is not a CID this store accepts."""

    def __init__(self, cid: str, reason: str) -> None:
        InputError.__init__(self, "cid", f"{cid!r} is not a valid CID: {reason}")
        self.cid = cid


class ContentNotFound(StorageError, NotFoundError):
    """The store holds no content under this CID."""

    def __init__(self, cid: str) -> None:
        super().__init__(f"no content stored under {cid}")
        self.cid = cid


class StoreUnavailable(StorageError):
    """The content store (e.g. an IPFS node) cannot be reached."""


class DatabaseUnavailable(StoreUnavailable):
    """The service database cannot be reached (or stayed locked past the busy timeout)."""


class StoreProtocolError(StorageError):
    """The content store answered something Kizuna cannot understand."""


__all__ = [
    "AccessDenied",
    "BatchProofInvalid",
    "ChainError",
    "ConfigError",
    "ConflictError",
    "ContentNotFound",
    "ContractReverted",
    "CryptoError",
    "DatabaseUnavailable",
    "DeploymentError",
    "EnvelopeError",
    "EnvelopeFormatError",
    "FhirValidationError",
    "FragmentError",
    "GrantExpired",
    "GrantRevoked",
    "InputError",
    "InsufficientFunds",
    "IntegrityError",
    "InvalidCid",
    "KeyDerivationError",
    "KeystoreError",
    "KizunaError",
    "NoGrant",
    "NodeUnreachable",
    "NonceTooLow",
    "NotFoundError",
    "ProviderNotRegistered",
    "ProviderSuspended",
    "QuotaExceeded",
    "RecordSuperseded",
    "SignerError",
    "StorageError",
    "StoreProtocolError",
    "StoreUnavailable",
    "TransactionError",
    "TransactionTimeout",
    "WrongChain",
    "WrongPatient",
]
