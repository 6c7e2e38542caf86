"""Signers: who signs a transaction or a typed-data document. Always passed in, never global.

* :class:`LocalKeySigner` holds a private key in memory (tests, the relayer, the service).
* :class:`KeystoreSigner` is a ``LocalKeySigner`` unlocked from an encrypted keystore file
  (see :mod:`kizuna.chain.keystore`); that is what the CLI uses.
* :class:`ExternalWalletSigner` holds no key at all: it builds exactly what a browser wallet
  (MetaMask, any EIP-1193 provider) expects — ``eth_sendTransaction`` params and
  ``eth_signTypedData_v4`` JSON — and checks what the wallet sends back (a signature that must
  recover to the wallet's address, or a transaction hash).

Keys never appear in ``repr``/``str``, logs or pickles: a signer shows only its address and
refuses to be pickled or copied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, Self, runtime_checkable

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address

from kizuna.chain.eip712 import TypedData
from kizuna.errors import InputError, SignerError
from kizuna.signatures import recover_signable
from kizuna.types import Address

TxHash = bytes
"""A 32-byte transaction hash."""


@runtime_checkable
class Signer(Protocol):
    """Signs transactions and EIP-712 documents for one address, locally."""

    @property
    def address(self) -> Address: ...

    def sign_transaction(self, tx: Mapping[str, Any]) -> bytes:
        """The raw signed transaction (ready for ``eth_sendRawTransaction``)."""
        ...

    def sign_typed_data(self, typed: TypedData) -> bytes:
        """The 65-byte signature ``r ‖ s ‖ v`` of an EIP-712 document."""
        ...


class _NoCopy:
    """Refuses pickling and copying: a key must not leave the process by accident."""

    __slots__ = ()

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds a private key and cannot be pickled")

    def __copy__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds a private key and cannot be copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds a private key and cannot be copied")


class LocalKeySigner(_NoCopy):
    """A private key held in memory. ``repr`` shows the address only."""

    __slots__ = ("_account",)

    def __init__(self, private_key: str | bytes) -> None:
        try:
            self._account: LocalAccount = Account.from_key(private_key)
        except (ValueError, TypeError) as exc:
            # The key itself must not end up in the message.
            raise SignerError(f"not a valid secp256k1 private key ({type(exc).__name__})") from None

    @classmethod
    def generate(cls) -> Self:
        """A fresh random key (``os.urandom`` through eth-account)."""
        signer = cls.__new__(cls)
        signer._account = Account.create()
        return signer

    @classmethod
    def _from_account(cls, account: LocalAccount) -> Self:
        signer = cls.__new__(cls)
        signer._account = account
        return signer

    @property
    def address(self) -> Address:
        return to_checksum_address(self._account.address)

    def sign_transaction(self, tx: Mapping[str, Any]) -> bytes:
        try:
            signed = self._account.sign_transaction(dict(tx))
        except (TypeError, ValueError) as exc:
            raise SignerError(f"cannot sign transaction: {exc}") from None
        return bytes(signed.raw_transaction)

    def sign_typed_data(self, typed: TypedData) -> bytes:
        signed = self._account.sign_message(typed.signable())
        return bytes(signed.signature)

    def sign_message(self, text: str) -> bytes:
        """An EIP-191 ``personal_sign`` signature of a text (SIWE, wallet-derived keys)."""
        return bytes(self._account.sign_message(encode_defunct(text=text)).signature)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address})"

    __str__ = __repr__


class KeystoreSigner(LocalKeySigner):
    """A key unlocked from an encrypted keystore file; build it with ``keystore.unlock``."""

    __slots__ = ("path",)

    path: str


_TX_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")


@dataclass(frozen=True, slots=True)
class ExternalWalletSigner:
    """A browser wallet (MetaMask, ...) that signs on the user's side; no key here.

    The agent or relayer prepares the request; the web page hands it to
    ``ethereum.request({method, params})`` and posts the answer back, which
    :meth:`accept_signature` / :meth:`accept_transaction_hash` check.
    """

    address: Address
    chain_id: int

    def __post_init__(self) -> None:
        if not is_address(self.address):
            raise InputError("address", f"{self.address!r} is not an Ethereum address")
        object.__setattr__(self, "address", to_checksum_address(self.address))

    def transaction_request(
        self,
        *,
        to: Address,
        data: bytes,
        gas: int,
        max_fee_per_gas: int,
        max_priority_fee_per_gas: int,
        value: int = 0,
    ) -> dict[str, str]:
        """The single element of ``eth_sendTransaction``'s params: every quantity as 0x hex.

        The nonce is left to the wallet, which tracks its own pending transactions.
        """
        return {
            "from": self.address,
            "to": to_checksum_address(to),
            "data": "0x" + data.hex(),
            "value": hex(value),
            "gas": hex(gas),
            "maxFeePerGas": hex(max_fee_per_gas),
            "maxPriorityFeePerGas": hex(max_priority_fee_per_gas),
            "chainId": hex(self.chain_id),
        }

    def typed_data_request(self, typed: TypedData) -> list[str]:
        """``eth_signTypedData_v4`` params: ``[address, JSON text]`` (EIP712Domain included)."""
        if typed.domain.chain_id != self.chain_id:
            raise InputError(
                "domain.chainId",
                f"typed data is for chain {typed.domain.chain_id}, the wallet for {self.chain_id}",
            )
        return [self.address, typed.to_json_string()]

    def accept_signature(self, typed: TypedData, signature: str | bytes) -> bytes:
        """Check a wallet's answer: 65 bytes that recover to this wallet's address."""
        raw = _signature_bytes(signature)
        recovered = recover_typed_data_signer(typed, raw)
        if recovered != self.address:
            raise SignerError(
                f"the signature recovers to {recovered}, not to the wallet {self.address}"
            )
        return raw

    def accept_transaction_hash(self, tx_hash: str | bytes) -> TxHash:
        """Check the wallet's ``eth_sendTransaction`` answer is a 32-byte hash."""
        if isinstance(tx_hash, bytes | bytearray):
            if len(tx_hash) != 32:
                raise InputError("txHash", "must be 32 bytes")
            return bytes(tx_hash)
        if not isinstance(tx_hash, str) or not _TX_HASH_RE.match(tx_hash):
            raise InputError("txHash", f"{tx_hash!r} is not a 0x-prefixed 32-byte hash")
        return bytes.fromhex(tx_hash[2:])


def _signature_bytes(signature: str | bytes) -> bytes:
    if isinstance(signature, bytes | bytearray):
        raw = bytes(signature)
    elif isinstance(signature, str) and _SIGNATURE_RE.match(signature):
        raw = bytes.fromhex(signature[2:])
    else:
        raise InputError("signature", "must be 65 bytes (0x + 130 hex digits)")
    if len(raw) != 65:
        raise InputError("signature", f"must be 65 bytes, got {len(raw)}")
    return raw


def recover_typed_data_signer(typed: TypedData, signature: str | bytes) -> Address:
    """The address that signed ``typed`` (EIP-712), or :class:`SignerError` when malformed
    (the rule of :mod:`kizuna.signatures`: high-s and unrecoverable ones too)."""
    raw = _signature_bytes(signature)
    try:
        return recover_signable(typed.signable(), raw)
    except InputError as exc:
        raise SignerError(f"malformed signature: {exc.reason}") from None


__all__ = [
    "ExternalWalletSigner",
    "KeystoreSigner",
    "LocalKeySigner",
    "Signer",
    "TxHash",
    "recover_typed_data_signer",
]
