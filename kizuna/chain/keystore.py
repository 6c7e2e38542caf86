"""Encrypted key files (Ethereum keystore v3, scrypt), unlocked by a passphrase.

The CLI keeps a user's key only in this form. Files are written atomically with mode ``0600``
and never overwritten by accident; errors say which file and what is wrong without echoing the
passphrase or the key:

* :class:`KeystoreNotFound` — no file at the path,
* :class:`KeystoreCorrupted` — not a keystore v3 document, or it does not decrypt consistently,
* :class:`WrongPassphrase` — the passphrase does not open it (MAC mismatch).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils.address import is_address, to_checksum_address

from kizuna.errors import ConflictError, InputError, KeystoreError, NotFoundError
from kizuna.filemodes import private_dir
from kizuna.types import Address

if TYPE_CHECKING:  # eth_account: imported by the functions that encrypt or decrypt a key, so
    from kizuna.chain.signers import KeystoreSigner  # reading a file's address does not load it

DEFAULT_SCRYPT_N = 2**18
"""scrypt cost (geth's "standard" setting): ~0.5 s and 256 MiB to unlock, on purpose."""


class KeystoreNotFound(KeystoreError, NotFoundError):
    """There is no keystore file at the given path."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no keystore file at {path}")
        self.path = path


class KeystoreCorrupted(KeystoreError):
    """The file is not a readable keystore v3 document."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"keystore {path} is corrupted: {reason}")
        self.path = path
        self.reason = reason


class WrongPassphrase(KeystoreError):
    """The passphrase does not decrypt this keystore."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"wrong passphrase for keystore {path}")
        self.path = path


def _check_passphrase(passphrase: str) -> None:
    if not isinstance(passphrase, str) or not passphrase:
        raise InputError("passphrase", "must be a non-empty string")


def create_keystore(
    path: str | os.PathLike[str],
    passphrase: str,
    *,
    private_key: str | bytes | None = None,
    scrypt_n: int = DEFAULT_SCRYPT_N,
    overwrite: bool = False,
) -> Address:
    """Encrypt a key (a new random one unless ``private_key`` is given) into ``path``.

    Returns the address. Refuses to replace an existing file unless ``overwrite``.
    """
    from eth_account import Account

    _check_passphrase(passphrase)
    target = Path(path)
    if target.exists() and not overwrite:
        raise ConflictError(f"keystore {target} exists already (not overwritten)")
    try:
        account = Account.create() if private_key is None else Account.from_key(private_key)
    except (ValueError, TypeError):
        raise InputError("private_key", "not a valid secp256k1 private key") from None
    document = Account.encrypt(account.key, passphrase, kdf="scrypt", iterations=scrypt_n)
    _write_private(target, json.dumps(document, indent=2).encode())
    return to_checksum_address(account.address)


def import_key(
    path: str | os.PathLike[str],
    private_key: str | bytes,
    passphrase: str,
    *,
    scrypt_n: int = DEFAULT_SCRYPT_N,
    overwrite: bool = False,
) -> Address:
    """Encrypt an existing private key into a keystore file (see :func:`create_keystore`)."""
    return create_keystore(
        path, passphrase, private_key=private_key, scrypt_n=scrypt_n, overwrite=overwrite
    )


def _write_private(target: Path, content: bytes) -> None:
    """Write ``content`` with mode 0600 atomically (temp file in the same dir, then rename)."""
    if not target.parent.exists():  # missing directories 0700; an existing one is the user's
        private_dir(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_document(target: Path) -> dict[str, Any]:
    try:
        text = target.read_bytes()
    except FileNotFoundError:
        raise KeystoreNotFound(target) from None
    except IsADirectoryError:
        raise KeystoreCorrupted(target, "is a directory") from None
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KeystoreCorrupted(target, f"not JSON ({exc.__class__.__name__})") from None
    if not isinstance(document, dict):
        raise KeystoreCorrupted(target, "not a JSON object")
    crypto = document.get("crypto", document.get("Crypto"))
    if document.get("version") != 3 or not isinstance(crypto, dict):
        raise KeystoreCorrupted(target, "not a version 3 keystore (missing 'version'/'crypto')")
    for key in ("cipher", "ciphertext", "cipherparams", "kdf", "kdfparams", "mac"):
        if key not in crypto:
            raise KeystoreCorrupted(target, f"missing crypto.{key}")
    return document


def keystore_address(path: str | os.PathLike[str]) -> Address:
    """The address a keystore file declares, read without the passphrase."""
    target = Path(path)
    document = _read_document(target)
    declared = document.get("address")
    if not isinstance(declared, str) or not is_address(declared):
        raise KeystoreCorrupted(target, "no valid 'address' field")
    return to_checksum_address(declared)


def unlock(path: str | os.PathLike[str], passphrase: str) -> KeystoreSigner:
    """Decrypt a keystore file into a :class:`KeystoreSigner` (the key stays in memory only)."""
    from eth_account import Account

    from kizuna.chain.signers import KeystoreSigner

    _check_passphrase(passphrase)
    target = Path(path)
    document = _read_document(target)
    try:
        key = Account.decrypt(document, passphrase)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPassphrase(target) from None
        raise KeystoreCorrupted(target, str(exc)) from None
    except (KeyError, TypeError, NotImplementedError) as exc:
        raise KeystoreCorrupted(target, f"unreadable crypto section ({exc!r})") from None
    account = Account.from_key(key)
    declared = document.get("address")
    if isinstance(declared, str) and is_address(declared) and (
        to_checksum_address(declared) != account.address
    ):
        raise KeystoreCorrupted(target, "the decrypted key does not match the declared address")
    signer = KeystoreSigner._from_account(account)
    signer.path = str(target)
    return signer


__all__ = [
    "DEFAULT_SCRYPT_N",
    "KeystoreCorrupted",
    "KeystoreNotFound",
    "WrongPassphrase",
    "create_keystore",
    "import_key",
    "keystore_address",
    "unlock",
]
