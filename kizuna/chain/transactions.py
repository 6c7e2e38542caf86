"""Sending transactions: nonces, gas, fees, receipts, confirmations — and node errors mapped.

One :class:`TransactionSender` per connection. It

* simulates every transaction first (``eth_estimateGas``), so a revert is reported *decoded*
  before anything is signed, and adds a margin to the estimate;
* hands out nonces from a per-address lock and a local cache (:class:`NonceManager`): two
  threads sending for the same address, or two signer objects of one key, never collide; the
  cache is resynchronised from the node whenever the node says the nonce is wrong;
* waits for the receipt with a timeout and an optional number of confirmations, and turns a
  failed receipt into :class:`TransactionReverted` (replayed with ``eth_call`` to decode why).

Every error from the node is translated into Kizuna's tree by :func:`node_errors`:
``NodeUnreachable``, ``InsufficientFunds``, ``NonceTooLow``, ``ContractReverted``,
``TransactionTimeout``.
"""

from __future__ import annotations

import math
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError as EthUtilsValidationError
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    BlockNotFound,
    MethodUnavailable,
    ProviderConnectionError,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)
from web3.types import BlockIdentifier

from kizuna.chain.models import ContractCall, LogEntry, TxReceipt
from kizuna.chain.reverts import RevertDecoder
from kizuna.chain.signers import Signer
from kizuna.errors import (
    ChainError,
    ContractReverted,
    InsufficientFunds,
    NodeUnreachable,
    NonceTooLow,
    TransactionError,
    TransactionTimeout,
    WrongChain,
)
from kizuna.types import Address


class TransactionReverted(ContractReverted):
    """A mined transaction failed (status 0). Carries the decoded error and the receipt."""

    def __init__(
        self, reverted: ContractReverted, *, tx_hash: bytes, receipt: TxReceipt | None = None
    ) -> None:
        super().__init__(reverted.name, reverted.error_args, data=reverted.data)
        self.tx_hash = tx_hash
        self.receipt = receipt
        self.args = (f"{self.args[0]} in transaction 0x{tx_hash.hex()}",)


@dataclass(frozen=True, slots=True)
class TxPolicy:
    """How transactions are sent and awaited.

    ``gas_margin`` multiplies the node's estimate (plus ``gas_extra``); ``confirmations`` counts
    the block that includes the transaction as the first; ``timeout`` bounds the wait for the
    receipt *and* the confirmations. The receipt is asked for at once, then after
    ``poll_interval``, growing 1.5× a time up to ``max_poll_interval``: a node that mines on
    arrival (anvil, a dev chain) often has the block a few milliseconds after the send, so the
    first wait is short (a wait longer than the mining would be most of a transaction's time;
    benchmarks/RESULTS.md has the measurement), and a 12 s chain is not asked much more often,
    since the interval soon reaches its cap.
    """

    gas_margin: float = 1.2
    gas_extra: int = 0
    timeout: float = 120.0
    confirmations: int = 1
    poll_interval: float = 0.004
    max_poll_interval: float = 0.5
    nonce_retries: int = 3
    fee_ttl: float = 1.0
    fee_multiplier: int = 2

    def __post_init__(self) -> None:
        if self.gas_margin < 1.0:
            raise ValueError("gas_margin must be at least 1.0")
        if self.confirmations < 1:
            raise ValueError("confirmations must be at least 1 (the including block)")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


# --- node errors ------------------------------------------------------------------------------

_NONCE_LOW = ("nonce too low", "nonce too small", "already known", "replacement transaction",
              "nonce has already been used", "known transaction")
_NONCE_HIGH = ("nonce too high",)
_FUNDS = ("insufficient funds", "cannot afford", "insufficient balance", "enough funds")
_ETH_TESTER_NONCE = re.compile(r"Invalid transaction nonce: Expected (\d+), but got (\d+)")


def _message_of(exc: BaseException) -> str:
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, Mapping):
        error = exc.rpc_response.get("error")
        if isinstance(error, Mapping):
            return str(error.get("message", ""))
    return str(exc)


class NonceTooHigh(TransactionError):
    """The node expects a lower nonce (the local cache ran ahead, e.g. after a dropped tx)."""


def classify(exc: BaseException, decoder: RevertDecoder) -> ChainError | None:
    """Kizuna's error for a node/provider exception, or ``None`` if it is not a node error."""
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
                  | ProviderConnectionError | ConnectionError | TimeoutError):
        return NodeUnreachable(f"the Ethereum node does not answer ({type(exc).__name__})")
    reverted = decoder.from_exception(exc)
    if reverted is not None:
        return reverted
    message = _message_of(exc)
    lower = message.lower()
    nonce = _ETH_TESTER_NONCE.search(message)
    if nonce is not None:
        expected, got = int(nonce.group(1)), int(nonce.group(2))
        if got < expected:
            return NonceTooLow(message)
        return NonceTooHigh(message)
    if any(marker in lower for marker in _NONCE_LOW):
        return NonceTooLow(message)
    if any(marker in lower for marker in _NONCE_HIGH):
        return NonceTooHigh(message)
    if any(marker in lower for marker in _FUNDS):
        return InsufficientFunds(message)
    if isinstance(exc, Web3RPCError) or type(exc).__name__ in ("ValidationError",
                                                                 "TransactionFailed"):
        return TransactionError(message)
    return None


PROVIDER_ERRORS: tuple[type[BaseException], ...] = (
    Web3Exception, requests.exceptions.RequestException, OSError, ValueError,
    EthUtilsValidationError)
"""Exception classes providers raise: web3.py's, requests' and eth-utils'."""

_tester_errors: tuple[type[BaseException], ...] | None = None


def provider_errors() -> tuple[type[BaseException], ...]:
    """:data:`PROVIDER_ERRORS`, plus eth-tester's once it is in use. eth-tester (a development
    dependency, web3's in-process test chain) is not imported here to find out: importing it
    pulls py-evm, a third of a second for every CLI call that never runs a tester chain."""
    global _tester_errors
    if _tester_errors is None:
        if "eth_tester.exceptions" not in sys.modules:
            return PROVIDER_ERRORS
        from eth_tester.exceptions import TransactionFailed
        from eth_tester.exceptions import ValidationError as TesterValidationError
        _tester_errors = (TransactionFailed, TesterValidationError)
    return PROVIDER_ERRORS + _tester_errors


@contextmanager
def node_errors(decoder: RevertDecoder) -> Iterator[None]:
    """Translate whatever the provider raises inside the block into Kizuna's error tree."""
    try:
        yield
    except (ChainError, TransactionNotFound, BlockNotFound):
        raise
    except provider_errors() as exc:
        mapped = classify(exc, decoder)
        if mapped is None:
            raise
        raise mapped from exc


# --- nonces -----------------------------------------------------------------------------------


@dataclass
class _NonceSlot:
    nonce: int
    used: bool = False


@dataclass
class NonceManager:
    """Per-address lock and next-nonce cache, shared by every sender of one connection."""

    w3: Web3
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _next: dict[str, int] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def _lock(self, address: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(address)
            if lock is None:
                lock = self._locks[address] = threading.Lock()
            return lock

    @contextmanager
    def reserve(self, address: Address) -> Iterator[_NonceSlot]:
        """Hold ``address``'s lock and yield its next nonce; mark ``used`` once broadcast."""
        with self._lock(address):
            nonce = self._next.get(address)
            if nonce is None:
                nonce = self.w3.eth.get_transaction_count(address, "pending")
            slot = _NonceSlot(nonce)
            yield slot
            if slot.used:
                self._next[address] = slot.nonce + 1

    def forget(self, address: Address) -> None:
        """Drop the cached nonce: the next reservation asks the node again."""
        self._next.pop(address, None)

    def peek(self, address: Address) -> int | None:
        return self._next.get(address)


# --- sender -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fees:
    """EIP-1559 fees: the cap per gas and the tip per gas (wei)."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int


class TransactionSender:
    """Simulates, signs, sends and awaits transactions on one connection."""

    def __init__(
        self,
        w3: Web3,
        *,
        chain_id: int,
        decoder: RevertDecoder,
        policy: TxPolicy | None = None,
        nonces: NonceManager | None = None,
    ) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.decoder = decoder
        self.policy = policy or TxPolicy()
        self.nonces = nonces or NonceManager(w3)
        self._fees: tuple[float, Fees] | None = None
        self._fee_lock = threading.Lock()
        self._pending_estimates = True  # until the node says it cannot (see estimate_gas)

    # -- simulation and gas --------------------------------------------------------------------

    def _call_params(self, call: ContractCall, sender: Address) -> dict[str, Any]:
        return {"from": sender, "to": call.to, "data": HexBytes(call.data), "value": call.value}

    def simulate(self, call: ContractCall, *, sender: Address,
                 block: BlockIdentifier = "latest") -> bytes:
        """``eth_call`` the transaction; its return data, or the decoded revert raised."""
        with node_errors(self.decoder):
            return bytes(self.w3.eth.call(self._call_params(call, sender),  # type: ignore[arg-type]
                                          block_identifier=block))

    def estimate_gas(self, call: ContractCall, *, sender: Address,
                     block: BlockIdentifier | None = None) -> int:
        """The gas limit to send with: the node's estimate times the margin (reverts decoded).

        Estimated in the ``pending`` block, the one the transaction goes into: nodes default to
        ``latest``, whose timestamp may be well behind the clock (a dev chain mines only on
        transactions, a public one every few seconds), so a call checked against the time of
        its own block — an anchor whose batch ends now (``toTime <= block.timestamp``) — was
        refused as a revert although it would succeed once mined. A node that cannot estimate
        in ``pending`` (eth-tester) is asked in ``latest`` from then on."""
        params = self._call_params(call, sender)
        at = block if block is not None else ("pending" if self._pending_estimates else "latest")
        with node_errors(self.decoder):
            try:
                estimate = self.w3.eth.estimate_gas(params, block_identifier=at)  # type: ignore[arg-type]
            except MethodUnavailable:
                if block is not None or at != "pending":
                    raise
                self._pending_estimates = False
                estimate = self.w3.eth.estimate_gas(params, block_identifier="latest")  # type: ignore[arg-type]
        return math.ceil(estimate * self.policy.gas_margin) + self.policy.gas_extra

    def fees(self) -> Fees:
        """Current EIP-1559 fees (cached ``fee_ttl`` seconds): tip + ``fee_multiplier`` × base."""
        now = time.monotonic()
        with self._fee_lock:
            if self._fees is not None and now - self._fees[0] < self.policy.fee_ttl:
                return self._fees[1]
        with node_errors(self.decoder):
            block = self.w3.eth.get_block("latest")
            base = int(block.get("baseFeePerGas", 0) or 0)
            tip = int(self.w3.eth.max_priority_fee)
        fees = Fees(max_fee_per_gas=self.policy.fee_multiplier * base + tip,
                    max_priority_fee_per_gas=tip)
        with self._fee_lock:
            self._fees = (now, fees)
        return fees

    # -- sending -------------------------------------------------------------------------------

    def transact(self, call: ContractCall, signer: Signer, *, gas: int | None = None) -> TxReceipt:
        """Simulate, sign with ``signer``, broadcast and wait: the receipt of a success."""
        tx_hash = self.broadcast(call, signer, gas=gas)
        return self.wait(tx_hash, call=call, sender=signer.address)

    def broadcast(self, call: ContractCall, signer: Signer, *, gas: int | None = None) -> bytes:
        """Sign and send with a managed nonce; the transaction hash. Does not wait."""
        sender = signer.address
        gas_limit = gas if gas is not None else self.estimate_gas(call, sender=sender)
        fees = self.fees()
        attempts = self.policy.nonce_retries + 1
        for attempt in range(attempts):
            with self.nonces.reserve(sender) as slot:
                tx = {
                    "type": 2,
                    "chainId": self.chain_id,
                    "nonce": slot.nonce,
                    "to": call.to,
                    "data": call.data,
                    "value": call.value,
                    "gas": gas_limit,
                    "maxFeePerGas": fees.max_fee_per_gas,
                    "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
                }
                raw = signer.sign_transaction(tx)
                try:
                    with node_errors(self.decoder):
                        tx_hash = bytes(self.w3.eth.send_raw_transaction(raw))
                except (NonceTooLow, NonceTooHigh):
                    self.nonces.forget(sender)
                    if attempt == attempts - 1:
                        raise
                    continue
                except ContractReverted:
                    # Hardhat's automine runs the transaction on submission and answers its
                    # revert — but mines it. Then it is a mined failure like on any node.
                    tx_hash = bytes(keccak(raw))
                    if not self._is_mined(tx_hash):
                        raise
                except TransactionError as error:
                    if "chain id" not in str(error).lower():
                        raise
                    # The node is (now) on another chain than this connection was checked for.
                    with node_errors(self.decoder):
                        actual = int(self.w3.eth.chain_id)
                    raise WrongChain(expected=self.chain_id, actual=actual) from error
                slot.used = True
                return tx_hash
        raise AssertionError("unreachable")

    def _is_mined(self, tx_hash: bytes) -> bool:
        with node_errors(self.decoder):
            try:
                self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                return False
        return True

    # -- receipts ------------------------------------------------------------------------------

    def wait(self, tx_hash: bytes, *, call: ContractCall | None = None,
             sender: Address | None = None, timeout: float | None = None,
             confirmations: int | None = None) -> TxReceipt:
        """The receipt once ``confirmations`` blocks include it; revert decoded; timeout raised.

        ``call`` and ``sender`` (when known) let a failed transaction be replayed to decode why.
        """
        limit = self.policy.timeout if timeout is None else timeout
        needed = self.policy.confirmations if confirmations is None else confirmations
        deadline = time.monotonic() + limit
        interval = self.policy.poll_interval
        receipt: Mapping[str, Any] | None = None
        while True:
            with node_errors(self.decoder):
                try:
                    receipt = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
                except TransactionNotFound:
                    receipt = None
                head = self.w3.eth.block_number if receipt is not None and needed > 1 else None
            if receipt is not None and receipt.get("blockNumber") is not None and (
                head is None or head - int(receipt["blockNumber"]) + 1 >= needed
            ):
                break
            if time.monotonic() >= deadline:
                if sender is not None:
                    self.nonces.forget(sender)
                raise TransactionTimeout(
                    f"transaction 0x{tx_hash.hex()} not "
                    + ("mined" if receipt is None else f"confirmed {needed} times")
                    + f" within {limit}s"
                )
            time.sleep(interval)
            interval = min(interval * 1.5, self.policy.max_poll_interval)
        result = receipt_from_web3(receipt)
        if result.status != 1:
            raise TransactionReverted(
                self._why_reverted(result, call, sender), tx_hash=tx_hash, receipt=result
            )
        return result

    def _why_reverted(self, receipt: TxReceipt, call: ContractCall | None,
                      sender: Address | None) -> ContractReverted:
        """Replay a failed transaction on its parent block's state to decode the revert."""
        with node_errors(self.decoder):
            tx = self.w3.eth.get_transaction(HexBytes(receipt.tx_hash))
        params: dict[str, Any] = {
            "from": sender or tx["from"],
            "to": call.to if call else tx["to"],
            "data": HexBytes(call.data) if call else tx["input"],
            "value": call.value if call else tx["value"],
            "gas": tx["gas"],
        }
        try:
            with node_errors(self.decoder):
                self.w3.eth.call(params,  # type: ignore[arg-type]
                                 block_identifier=max(receipt.block_number - 1, 0))
        except ContractReverted as reverted:
            return reverted
        if receipt.gas_used >= int(tx["gas"]):
            return ContractReverted("OutOfGas", {"gas": int(tx["gas"])})
        return ContractReverted("EmptyRevert", {})


def receipt_from_web3(raw: Mapping[str, Any]) -> TxReceipt:
    """A frozen :class:`TxReceipt` from web3.py's receipt mapping."""
    logs = tuple(
        LogEntry(
            address=to_checksum_address(log["address"]),
            topics=tuple(bytes(t) for t in log["topics"]),
            data=bytes(log["data"]),
            block_number=int(log["blockNumber"]),
            block_hash=bytes(log["blockHash"]),
            tx_hash=bytes(log["transactionHash"]),
            log_index=int(log["logIndex"]),
        )
        for log in raw.get("logs", [])
    )
    to = raw.get("to")
    return TxReceipt(
        tx_hash=bytes(raw["transactionHash"]),
        block_number=int(raw["blockNumber"]),
        block_hash=bytes(raw["blockHash"]),
        sender=to_checksum_address(raw["from"]),
        to=to_checksum_address(to) if to else None,
        status=int(raw.get("status", 0)),
        gas_used=int(raw["gasUsed"]),
        effective_gas_price=int(raw.get("effectiveGasPrice", 0) or 0),
        contract_address=(to_checksum_address(raw["contractAddress"])
                          if raw.get("contractAddress") else None),
        logs=logs,
    )


__all__ = [
    "PROVIDER_ERRORS",
    "Fees",
    "NonceManager",
    "NonceTooHigh",
    "TransactionReverted",
    "TransactionSender",
    "TxPolicy",
    "classify",
    "node_errors",
    "provider_errors",
    "receipt_from_web3",
]
