"""Transactions on the wire: one a participant sent with their own wallet, and one prepared
for a browser wallet to send."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kizuna.errors import InputError

_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


@dataclass(frozen=True, slots=True)
class SentTransaction:
    """A transaction the participant sent with their own wallet; the service only waits for it."""

    tx_hash: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.tx_hash, bytes) or len(self.tx_hash) != 32:
            raise InputError("txHash", "must be 32 bytes")

    @classmethod
    def parse(cls, value: str | bytes) -> SentTransaction:
        """From ``0x`` + 64 hex digits (what ``eth_sendTransaction`` answers) or 32 bytes."""
        if isinstance(value, bytes | bytearray):
            return cls(bytes(value))
        if not isinstance(value, str) or not _TX_HASH.match(value):
            raise InputError("txHash", f"{value!r} is not a 0x-prefixed 32-byte hash")
        return cls(bytes.fromhex(value[2:]))

    def hex(self) -> str:
        return "0x" + self.tx_hash.hex()


@dataclass(frozen=True, slots=True)
class PreparedAction:
    """What a browser wallet needs to perform one action.

    ``transaction`` is the single element of ``eth_sendTransaction``'s params (every quantity
    ``0x`` hex, nonce left to the wallet); ``typed_data`` the ``eth_signTypedData_v4`` document
    when the ledger also accepts the action signed (gasless, relayed by the service).
    """

    action: str
    transaction: dict[str, str]
    typed_data: dict[str, Any] | None = None
