"""The access log agent: typed views and transactions of ``AccessLog`` (anchored receipt roots)."""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.types import BlockIdentifier

from kizuna.chain.agents.base import AccessControlAgent, as_bytes32, as_bytes32_list
from kizuna.chain.models import ContractCall, ReceiptBatch, TxReceipt
from kizuna.chain.signers import Signer
from kizuna.errors import InputError
from kizuna.types import Address

AUDITOR_ROLE = keccak(text="KIZUNA_AUDITOR_ROLE")
"""The AccessControl role id of auditors in ``AccessLog``. The contract does not declare it
(nothing on-chain needs it), but ``AccessControl`` accepts any role id: the admin grants it with
``grantRole`` (``kizuna admin grant-role auditor``) and the service reads it at each request."""


class AccessLogAgent(AccessControlAgent):
    """``AccessLog``: the Merkle roots of providers' read receipts, batch by batch."""

    contract_name = "AccessLog"

    # ========================================================================================
    # Calls
    # ========================================================================================

    def verify_receipt(self, root: bytes, leaf: bytes, proof: Sequence[bytes], *,
                       block: BlockIdentifier = "latest") -> bool:
        """True when ``leaf`` is in the anchored tree ``root`` by ``proof``."""
        return bool(self._view("verifyReceipt", as_bytes32("root", root),
                               as_bytes32("leaf", leaf), as_bytes32_list("proof", proof),
                               block=block))

    def batch_of(self, root: bytes, *, block: BlockIdentifier = "latest") -> ReceiptBatch | None:
        """The batch anchored under ``root``; ``None`` when never anchored."""
        anchored, index, count, from_time, to_time = self._view(
            "batchOf", as_bytes32("root", root), block=block)
        if not anchored:
            return None
        return ReceiptBatch(batch_index=int(index), root=bytes(root), count=int(count),
                            from_time=int(from_time), to_time=int(to_time))

    def batch_count(self, anchorer: Address, *,
                    block: BlockIdentifier = "latest") -> tuple[int, int]:
        """How many batches ``anchorer`` anchored, and the end time of its last one (each
        anchorer -- the service, each proxy node -- has its own sequence)."""
        count, last_to_time = self._view("batchCount", to_checksum_address(anchorer),
                                         block=block)
        return int(count), int(last_to_time)

    def anchor_role(self) -> bytes:
        return bytes(self._view("ANCHOR_ROLE"))

    def is_anchorer(self, account: Address) -> bool:
        return bool(self._view("hasRole", self.anchor_role(), to_checksum_address(account)))

    def auditor_role(self) -> bytes:
        return AUDITOR_ROLE

    def is_auditor(self, account: Address, *, block: BlockIdentifier = "latest") -> bool:
        return self.has_role(AUDITOR_ROLE, account, block=block)

    # ========================================================================================
    # Transactions
    # ========================================================================================

    def anchor_call(self, root: bytes, count: int, from_time: int, to_time: int) -> ContractCall:
        if count <= 0:
            raise InputError("count", "a batch holds at least one receipt")
        return self._call("anchor", as_bytes32("root", root), count, from_time, to_time)

    def anchor(self, root: bytes, count: int, from_time: int, to_time: int, *,
               signer: Signer) -> ReceiptBatch:
        """Anchor a batch's Merkle root (the signer holds ``ANCHOR_ROLE``); the batch made."""
        receipt = self._send(self.anchor_call(root, count, from_time, to_time), signer)
        return self.batch_from(receipt)

    def batch_from(self, receipt: TxReceipt) -> ReceiptBatch:
        """The :class:`ReceiptBatch` announced by an ``anchor`` transaction's receipt."""
        events = self.events(receipt, "ReceiptRootAnchored")
        if len(events) != 1:
            raise InputError("receipt", "is not the receipt of one anchor transaction")
        args = events[0].args
        return ReceiptBatch(batch_index=int(args["batchIndex"]), root=bytes(args["root"]),
                            count=int(args["count"]), from_time=int(args["fromTime"]),
                            to_time=int(args["toTime"]), anchored_by=args["anchoredBy"],
                            block_number=receipt.block_number, tx_hash=receipt.tx_hash)


__all__ = ["AUDITOR_ROLE", "AccessLogAgent"]
