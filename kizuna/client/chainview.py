"""What a participant's side reads from the chain itself, without taking the service's word.

:func:`registered_commitment` finds a record's ``RecordRegistered`` event with one
``eth_getLogs`` filtered on its indexed patient and record id: the commitment a provider checks
a decrypted envelope against when it has its own connection to a node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils.crypto import keccak
from hexbytes import HexBytes

from kizuna.chain.transactions import node_errors
from kizuna.errors import NotFoundError
from kizuna.types import Address, Commitment, RecordId

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain

RECORD_REGISTERED = bytes(keccak(text="RecordRegistered(address,bytes32,bytes32,bytes32)"))
"""topic0 of ``RecordRegistered(address indexed patient, RecordId indexed recordId,
bytes32 commitment, ScopeId scopeId)`` (``RecordId`` / ``ScopeId`` are ``bytes32``)."""


def registered_commitment(chain: Chain, *, patient: Address, record_id: RecordId) -> Commitment:
    """The commitment ``patient`` registered for ``record_id`` (``NotFoundError`` if none)."""
    topics = [HexBytes(RECORD_REGISTERED), HexBytes(bytes(12) + bytes.fromhex(patient[2:])),
              HexBytes(bytes(record_id))]
    with node_errors(chain.decoder):
        logs = chain.w3.eth.get_logs({
            "address": chain.deployment.consent_ledger, "topics": topics,
            "fromBlock": chain.deployment.deploy_block, "toBlock": "latest"})
    if not logs:
        raise NotFoundError(f"no record 0x{bytes(record_id).hex()} registered by {patient}")
    return Commitment(bytes(logs[-1]["data"])[:32])


__all__ = ["RECORD_REGISTERED", "registered_commitment"]
