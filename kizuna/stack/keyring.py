"""The named keys of a Kizuna home: ``$KIZUNA_HOME/keys/<name>.json``, keystore v3 files.

A thin naming layer over :mod:`kizuna.chain.keystore` (which owns encryption, atomic 0600
writes and the precise errors: missing file, corrupted file, wrong passphrase). Names are what
users type (``alice``, ``dr-tanaka``): lowercase letters, digits, ``.``, ``_`` and ``-``.
"""

from __future__ import annotations

import re
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kizuna.chain.keystore import (
    DEFAULT_SCRYPT_N,
    KeystoreNotFound,
    create_keystore,
    import_key,
    keystore_address,
    unlock,
)
from kizuna.errors import ConflictError, InputError, KeystoreError
from kizuna.filemodes import private_dir
from kizuna.types import Address

if TYPE_CHECKING:
    from kizuna.chain.signers import KeystoreSigner

LIGHT_SCRYPT_N = 2**14
"""scrypt cost of ``--light-kdf`` keys (demo identities, tests): ~16 MiB, milliseconds."""

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def check_key_name(name: str) -> str:
    """``name`` if it is a valid key name, else ``InputError`` (field ``name``)."""
    if not _NAME.fullmatch(name):
        raise InputError("name", f"{name!r} is not a key name (lowercase letters, digits, "
                                 "'.', '_' or '-', at most 64, starting with a letter or digit)")
    return name


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key of the keyring, as listed (nothing secret)."""

    name: str
    address: Address | None
    """``None`` when the file cannot be read (``problem`` says why)."""
    path: Path
    modified: datetime
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Keyring:
    """The keys in one directory (``KizunaHome.keys_dir``)."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / f"{check_key_name(name)}.json"

    def create(self, name: str, passphrase: str, *, light_kdf: bool = False) -> Address:
        """A new random key under ``name`` (``ConflictError`` if the name is taken)."""
        return create_keystore(self.free_path(name), passphrase, scrypt_n=_cost(light_kdf))

    def import_private_key(self, name: str, private_key: str, passphrase: str, *,
                           light_kdf: bool = False) -> Address:
        """Encrypt an existing private key (hex) under ``name``."""
        return import_key(self.free_path(name), private_key.strip(), passphrase,
                          scrypt_n=_cost(light_kdf))

    def import_keystore(self, name: str, source: Path, passphrase: str) -> Address:
        """Copy a keystore v3 file (geth, MetaMask export, ...) under ``name`` after checking
        that ``passphrase`` opens it (so a typo is found now, not at the first signature)."""
        target = self.free_path(name)
        signer = unlock(source, passphrase)
        private_dir(self.directory)
        shutil.copyfile(source, target)
        target.chmod(0o600)
        return signer.address

    def address(self, name: str) -> Address:
        """The address of ``name``'s key (no passphrase needed: keystores declare it)."""
        return keystore_address(self.path(name))

    def unlock(self, name: str, passphrase: str) -> KeystoreSigner:
        """Decrypt ``name``'s key into a signer (``WrongPassphrase``, ``KeystoreNotFound``,
        ``KeystoreCorrupted`` otherwise)."""
        return unlock(self.path(name), passphrase)

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def entries(self) -> list[KeyEntry]:
        """Every ``*.json`` key in the directory, by name; unreadable ones say why."""
        if not self.directory.is_dir():
            return []
        found: list[KeyEntry] = []
        for path in sorted(self.directory.glob("*.json")):
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            problem: str | None = None
            address: Address | None = None
            try:
                address = keystore_address(path)
            except KeystoreError as exc:
                problem = str(exc)
            if problem is None and stat.S_IMODE(path.stat().st_mode) & 0o077:
                problem = f"readable by others (mode {stat.S_IMODE(path.stat().st_mode):o}): " \
                          f"chmod 600 {path}"
            found.append(KeyEntry(name=path.stem, address=address, path=path,
                                  modified=modified, problem=problem))
        return found

    def free_path(self, name: str) -> Path:
        """Where a new key ``name`` goes; ``ConflictError`` if a key of that name exists."""
        target = self.path(name)
        if target.exists():
            raise ConflictError(f"a key named {name!r} exists already ({target})")
        return target


def _cost(light_kdf: bool) -> int:
    return LIGHT_SCRYPT_N if light_kdf else DEFAULT_SCRYPT_N


__all__ = [
    "LIGHT_SCRYPT_N",
    "KeyEntry",
    "Keyring",
    "KeystoreNotFound",
    "check_key_name",
]
