"""What every contract agent shares: views through the revert decoder, calls built for any
signer, transactions sent through the connection's :class:`TransactionSender`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3.types import BlockIdentifier

from kizuna.chain.index.events import DecodedEvent, EventDecoder
from kizuna.chain.models import ContractCall, TxReceipt
from kizuna.chain.signers import ExternalWalletSigner, Signer
from kizuna.chain.transactions import TransactionReverted, node_errors
from kizuna.errors import InputError
from kizuna.types import Address, checked_bytes32

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain


class Agent:
    """One Kizuna contract on one :class:`Chain`. Subclasses set ``contract_name``."""

    contract_name: ClassVar[str]

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.contract = chain.contract(self.contract_name)
        self.address: Address = self.contract.address
        self._events = EventDecoder(
            {self.address: (self.contract_name, chain.abis[self.contract_name])}
        )

    # -- plumbing for the typed methods ------------------------------------------------------

    def _view(self, function: str, *args: Any, block: BlockIdentifier = "latest") -> Any:
        """Call a view at ``block``; a revert is raised decoded (``ContractReverted``)."""
        with node_errors(self.chain.decoder):
            return self.contract.functions[function](*args).call(block_identifier=block)

    def _call(self, function: str, *args: Any) -> ContractCall:
        """The unsigned call of ``function(*args)`` on this contract."""
        data = self.contract.encode_abi(function, args=list(args))
        return ContractCall(to=self.address, data=bytes.fromhex(data[2:]), function=function)

    def _send(self, call: ContractCall, signer: Signer) -> TxReceipt:
        return self.chain.sender.transact(call, signer)

    # -- for external wallets ----------------------------------------------------------------

    def wallet_request(self, call: ContractCall, wallet: ExternalWalletSigner) -> dict[str, str]:
        """``eth_sendTransaction`` params for a browser wallet: simulated first (reverts
        raised decoded), gas estimated with the margin, current fees."""
        sender = self.chain.sender
        gas = sender.estimate_gas(call, sender=wallet.address)
        fees = sender.fees()
        return wallet.transaction_request(
            to=call.to, data=call.data, value=call.value, gas=gas,
            max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        )

    def wallet_receipt(self, call: ContractCall, wallet: ExternalWalletSigner,
                       tx_hash: str | bytes) -> TxReceipt:
        """Wait for the transaction a wallet sent for ``call``; check it *is* that call (same
        sender, contract, calldata and value) before reporting its success or revert."""
        raw_hash = wallet.accept_transaction_hash(tx_hash)
        failure: TransactionReverted | None = None
        try:
            receipt = self.chain.sender.wait(raw_hash, call=call, sender=wallet.address)
        except TransactionReverted as reverted:
            failure = reverted
        with node_errors(self.chain.decoder):
            sent = self.chain.w3.eth.get_transaction(HexBytes(raw_hash))
        to = sent.get("to")
        if (sent["from"] != wallet.address or to is None or to_checksum_address(to) != call.to
                or bytes(sent["input"]) != call.data or int(sent["value"]) != call.value):
            raise InputError(
                "txHash", f"transaction 0x{raw_hash.hex()} is not the prepared {call.function} "
                          f"call from {wallet.address}")
        if failure is not None:
            raise failure
        return receipt

    # -- events ------------------------------------------------------------------------------

    def events(self, receipt: TxReceipt, name: str | None = None) -> list[DecodedEvent]:
        """This contract's events in a receipt (optionally only those named ``name``)."""
        found: list[DecodedEvent] = []
        for log in receipt.logs:
            if log.address != self.address:
                continue
            decoded = self._events.decode_raw({
                "address": log.address, "topics": list(log.topics), "data": log.data,
                "blockNumber": log.block_number, "blockHash": log.block_hash,
                "transactionHash": log.tx_hash, "logIndex": log.log_index,
            })
            if decoded is not None and (name is None or decoded.name == name):
                found.append(decoded)
        return found


DEFAULT_ADMIN_ROLE = bytes(32)
"""OpenZeppelin ``AccessControl``'s ``DEFAULT_ADMIN_ROLE`` (``0x00``): grants and revokes the
other roles of its contract (every role's admin unless ``_setRoleAdmin`` says otherwise)."""


class AccessControlAgent(Agent):
    """An agent of a contract built on OpenZeppelin ``AccessControl`` (``ProviderRegistry``,
    ``AccessLog``): the role views and transactions every such contract has."""

    # ========================================================================================
    # Calls
    # ========================================================================================

    def has_role(self, role: bytes, account: Address, *,
                 block: BlockIdentifier = "latest") -> bool:
        return bool(self._view("hasRole", as_bytes32("role", role),
                               to_checksum_address(account), block=block))

    def role_admin(self, role: bytes, *, block: BlockIdentifier = "latest") -> bytes:
        """The role whose holders may grant and revoke ``role`` (``getRoleAdmin``)."""
        return bytes(self._view("getRoleAdmin", as_bytes32("role", role), block=block))

    # ========================================================================================
    # Transactions
    # ========================================================================================

    def grant_role_call(self, role: bytes, account: Address) -> ContractCall:
        return self._call("grantRole", as_bytes32("role", role), to_checksum_address(account))

    def grant_role(self, role: bytes, account: Address, *, signer: Signer) -> TxReceipt:
        """The role's admin (the signer) gives ``role`` to ``account`` (no-op if held)."""
        return self._send(self.grant_role_call(role, account), signer)

    def revoke_role_call(self, role: bytes, account: Address) -> ContractCall:
        return self._call("revokeRole", as_bytes32("role", role), to_checksum_address(account))

    def revoke_role(self, role: bytes, account: Address, *, signer: Signer) -> TxReceipt:
        """The role's admin (the signer) takes ``role`` from ``account`` (no-op if not held)."""
        return self._send(self.revoke_role_call(role, account), signer)


def as_bytes32(name: str, value: bytes) -> bytes:
    """Check a 32-byte id at the boundary (``InputError`` names the field)."""
    return checked_bytes32(name, value)


def as_bytes32_list(name: str, values: Sequence[bytes]) -> list[bytes]:
    return [as_bytes32(f"{name}[{i}]", v) for i, v in enumerate(values)]


__all__ = ["DEFAULT_ADMIN_ROLE", "AccessControlAgent", "Agent", "as_bytes32", "as_bytes32_list"]
