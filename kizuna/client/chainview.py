"""What a participant's side reads from the chain itself, without taking the service's word.

:func:`registered_commitment` finds a record's ``RecordRegistered`` event with one
``eth_getLogs`` filtered on its indexed patient and record id (in the one block the service
names as a hint, else the whole chain): the commitment a patient or provider checks a decrypted
envelope against when it has its own connection to a node. :func:`registered_commitments` reads
all of a patient's at once (one ``eth_getLogs``) for bulk reads.

:func:`patient_encryption_key` is the one way the participant's side gets a key to encrypt to
a patient (reports, prescriptions, booking answers, messages, access-request notes): the key in
the patient's own signed ``InboxKey`` statement, checked against the patient's address and the
proxy domain of the participant's own chain and deployment — a service (or a man in the middle)
that hands out another key, another patient's statement or a statement of another deployment
is refused (``UntrustedKey``). Keys to a *provider* come from the ``ProviderRegistry`` read over
the participant's own node (``KizunaService.provider_key``, ``grants.registry_key``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.types import BlockIdentifier, RPCEndpoint

from kizuna.chain.transactions import node_errors
from kizuna.errors import NodeUnreachable, NotFoundError
from kizuna.types import Address, Commitment, RecordId

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.client.service import KizunaService
    from kizuna.crypto.pre import UmbralPublicKey

RECORD_REGISTERED = bytes(keccak(text="RecordRegistered(address,bytes32,bytes32,bytes32)"))
"""topic0 of ``RecordRegistered(address indexed patient, RecordId indexed recordId,
bytes32 commitment, ScopeId scopeId)`` (``RecordId`` / ``ScopeId`` are ``bytes32``)."""


def _registrations(chain: Chain, topics: list[HexBytes | None], *,
                   from_block: int | None = None,
                   to_block: BlockIdentifier = "latest") -> list[Any]:
    with node_errors(chain.decoder):
        return list(chain.w3.eth.get_logs({
            "address": chain.deployment.consent_ledger, "topics": topics,
            "fromBlock": chain.deployment.deploy_block if from_block is None else from_block,
            "toBlock": to_block}))


def registered_commitment(chain: Chain, *, patient: Address, record_id: RecordId,
                          block: int | None = None) -> Commitment:
    """The commitment ``patient`` registered for ``record_id`` (``NotFoundError`` if none).

    ``block`` is a hint (the service's index names it): the event is looked for in that one
    block first — O(1), whatever the length of the chain — and, when it is not there, in the
    whole chain. A wrong hint costs a scan, never a wrong answer: the event is the node's, and
    a record id is registered once (the ledger refuses a second registration)."""
    topics: list[HexBytes | None] = [
        HexBytes(RECORD_REGISTERED), _patient_topic(patient), HexBytes(bytes(record_id))]
    logs = (_registrations(chain, topics, from_block=block, to_block=block)
            if block is not None else [])
    if not logs:
        logs = _registrations(chain, topics)
    if not logs:
        raise NotFoundError(f"no record 0x{bytes(record_id).hex()} registered by {patient}")
    return Commitment(bytes(logs[-1]["data"])[:32])


def registered_commitments(chain: Chain, *, patient: Address) -> dict[bytes, Commitment]:
    """Every commitment ``patient`` registered, by record id: ONE ``eth_getLogs`` of their
    ``RecordRegistered`` events (the bulk path: an export checks each download against it)."""
    # The raw JSON-RPC answer: web3's log formatters cost ~0.2 ms a log (a second for a
    # 5,000-record history); the two fields needed are read here.
    query = {"address": chain.deployment.consent_ledger,
             "topics": [HexBytes(RECORD_REGISTERED).to_0x_hex(),
                        _patient_topic(patient).to_0x_hex()],
             "fromBlock": hex(chain.deployment.deploy_block), "toBlock": "latest"}
    with node_errors(chain.decoder):
        answer = chain.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [query])
    if "error" in answer:
        raise NodeUnreachable(f"the node refused eth_getLogs: {answer['error']}")
    return {bytes.fromhex(log["topics"][2][2:]): Commitment(bytes.fromhex(log["data"][2:66]))
            for log in answer["result"]}


def _patient_topic(patient: Address) -> HexBytes:
    return HexBytes(bytes(12) + bytes.fromhex(patient[2:]))


def patient_encryption_key(service: KizunaService, patient: Address) -> UmbralPublicKey:
    """The key to encrypt a message to ``patient`` with: their published inbox key, taken
    only from their statement as checked here (``proxy_domain`` is computed from the
    participant's own chain connection and deployment, not asked of the service)."""
    entry = service.inbox_key_of(patient)
    return entry.verified_key(patient=patient, domain=service.proxy_domain())


__all__ = ["RECORD_REGISTERED", "patient_encryption_key", "registered_commitment",
           "registered_commitments"]
