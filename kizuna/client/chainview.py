"""What a participant's side reads from the chain itself, without taking the service's word.

:func:`registered_commitment` finds the commitment a record was registered with: a record
registered alone by its ``RecordRegistered`` event, one ``eth_getLogs`` filtered on its indexed
patient and record id (in the one block the service names as a hint, else the whole chain);
a record registered in a batch (docs/contracts.md "Batches") by the patient's
``RecordBatchRegistered`` events and the batch's manifest, which the service hands out but which
is used only when its leaves rebuild to the root the chain registered for that patient
(:class:`BatchManifests`). That is the commitment a patient or provider checks a decrypted
envelope against when it has its own connection to a node. :func:`registered_commitments`
reads all of a patient's at once (one ``eth_getLogs``, one manifest per batch) for bulk reads.
:func:`batch_commitment` checks a batch record's Merkle proof instead of a whole manifest.

:func:`patient_encryption_key` is the one way the participant's side gets a key to encrypt to
a patient (reports, prescriptions, booking answers, messages, access-request notes): the key in
the patient's own signed ``InboxKey`` statement, checked against the patient's address and the
proxy domain of the participant's own chain and deployment — a service (or a man in the middle)
that hands out another key, another patient's statement or a statement of another deployment
is refused (``UntrustedKey``). Keys to a *provider* come from the ``ProviderRegistry`` read over
the participant's own node (``KizunaService.provider_key``, ``grants.registry_key``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, cast

from eth_utils.crypto import keccak
from hexbytes import HexBytes

from kizuna.batch import BatchLeaf, BatchManifest, proof_leads_to
from kizuna.chain.rpc import ChainReader, RawLog
from kizuna.errors import InputError, IntegrityError, NodeUnreachable, NotFoundError
from kizuna.types import Address, Commitment, RecordId

if TYPE_CHECKING:  # web3 is the Chain's: not loaded by importing this module
    from web3.types import BlockIdentifier, RPCEndpoint

    from kizuna.chain.connection import Chain
    from kizuna.client.service import KizunaService
    from kizuna.crypto.pre import UmbralPublicKey

RECORD_REGISTERED = bytes(keccak(text="RecordRegistered(address,bytes32,bytes32,bytes32)"))
"""topic0 of ``RecordRegistered(address indexed patient, RecordId indexed recordId,
bytes32 commitment, ScopeId scopeId)`` (``RecordId`` / ``ScopeId`` are ``bytes32``)."""

RECORD_BATCH_REGISTERED = bytes(keccak(text="RecordBatchRegistered(address,bytes32,uint32)"))
"""topic0 of ``RecordBatchRegistered(address indexed patient, bytes32 indexed root,
uint32 count)``."""


class BatchManifests:
    """Batch manifests fetched from a source nobody trusts (the service: ``fetch(root)`` gives
    the bytes), each kept only when its leaves rebuild to ``root`` and it holds the count the
    chain registered; kept by root, since a root commits to every byte of its manifest (so a
    bulk read or a run of single reads fetches each batch's manifest once). Thread-safe."""

    def __init__(self, fetch: Callable[[bytes], bytes]) -> None:
        self._fetch = fetch
        self._known: dict[bytes, BatchManifest] = {}
        self._lock = threading.Lock()

    def of(self, root: bytes, count: int) -> BatchManifest:
        """The manifest of the batch ``root`` of ``count`` records (``IntegrityError`` when the
        source's bytes are not it)."""
        key = bytes(root)
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        data = self._fetch(key)
        try:
            manifest = BatchManifest.decode(data, root=key)
        except InputError as exc:
            raise IntegrityError(f"the manifest the service gave for batch 0x{key.hex()} is "
                                 f"not the one registered on chain: {exc.reason}") from None
        if manifest.count != count:
            raise IntegrityError(f"the manifest the service gave for batch 0x{key.hex()} holds "
                                 f"{manifest.count} records; the chain registered {count}")
        with self._lock:
            self._known[key] = manifest
        return manifest


def _registrations(chain: Chain | ChainReader, topics: Sequence[bytes | list[bytes] | None], *,
                   from_block: int | None = None,
                   to_block: BlockIdentifier = "latest") -> list[RawLog]:
    """The ConsentLedger's logs matching ``topics``: over the participant's lean reader (a
    read of one's own record: no web3), or the web3 connection of a full :class:`Chain`."""
    start = chain.deployment.deploy_block if from_block is None else from_block
    if isinstance(chain, ChainReader):
        return chain.logs(chain.deployment.consent_ledger, topics, from_block=start,
                          to_block=to_block if isinstance(to_block, int | str) else "latest")
    from kizuna.chain.transactions import node_errors  # web3's errors, with the Chain's web3

    with node_errors(chain.decoder):
        logs = chain.w3.eth.get_logs({
            "address": chain.deployment.consent_ledger,
            "topics": [None if t is None else HexBytes(t) if isinstance(t, bytes)
                       else [HexBytes(v) for v in t] for t in topics],
            "fromBlock": start, "toBlock": to_block})
    return [RawLog(topics=tuple(bytes(t) for t in log["topics"]), data=bytes(log["data"]),
                   block_number=int(log["blockNumber"])) for log in logs]


def registered_commitment(chain: Chain | ChainReader, *, patient: Address, record_id: RecordId,
                          block: int | None = None,
                          manifests: BatchManifests | None = None) -> Commitment:
    """The commitment ``patient`` registered for ``record_id`` (``NotFoundError`` if none).

    ``block`` is a hint (the service's index names it): the patient's registrations are looked
    for in that one block first — O(1), whatever the length of the chain — and, when the
    record is not there, in the whole chain. A wrong hint costs a scan, never a wrong answer:
    the events are the node's, and a record id is registered alone once (the ledger refuses a
    second registration). With ``manifests``, a record registered in one of the patient's
    batches is found too (its leaf in a manifest checked against the batch's on-chain root);
    a record registered alone comes first."""
    rid = bytes(record_id)
    if block is not None:
        logs = _registrations(chain, [[RECORD_REGISTERED, RECORD_BATCH_REGISTERED],
                                      _patient_topic(patient)], from_block=block, to_block=block)
        found = _commitment_in(logs, rid, manifests)
        if found is not None:
            return found
    logs = _registrations(chain, [RECORD_REGISTERED, _patient_topic(patient), rid])
    if not logs and manifests is not None:
        logs = _registrations(chain, [RECORD_BATCH_REGISTERED, _patient_topic(patient)])
    found = _commitment_in(logs, rid, manifests)
    if found is None:
        raise NotFoundError(f"no record 0x{rid.hex()} registered by {patient}")
    return found


def _commitment_in(logs: Sequence[RawLog], record_id: bytes,
                   manifests: BatchManifests | None) -> Commitment | None:
    """The record's commitment from the first of ``logs`` (one patient's registrations, in
    chain order) that registered it: its own event, or a batch whose manifest holds it."""
    for log in logs:
        topics, data = log.topics, log.data
        if topics[0] == RECORD_REGISTERED and topics[2] == record_id:
            return Commitment(data[:32])
        if topics[0] == RECORD_BATCH_REGISTERED and manifests is not None:
            manifest = manifests.of(topics[2], int.from_bytes(data[:32], "big"))
            try:
                return manifest.leaves[manifest.index_of(record_id)].commitment
            except InputError:
                continue  # not in this batch
    return None


def registered_commitments(chain: Chain, *, patient: Address,
                           manifests: BatchManifests | None = None) -> dict[bytes, Commitment]:
    """Every commitment ``patient`` registered, by record id: ONE ``eth_getLogs`` of their
    ``RecordRegistered`` and ``RecordBatchRegistered`` events, and each batch's manifest
    (checked against its root) — the bulk path: an export checks each download against it.
    A record id registered twice keeps its first registration, as the index does. Without
    ``manifests`` the records of batches are left out (a read of one then finds no
    registration and is refused: never taken on the service's word)."""
    # The raw JSON-RPC answer: web3's log formatters cost ~0.2 ms a log (a second for a
    # 5,000-record history); the fields needed are read here.
    query = {"address": chain.deployment.consent_ledger,
             "topics": [[HexBytes(RECORD_REGISTERED).to_0x_hex(),
                         HexBytes(RECORD_BATCH_REGISTERED).to_0x_hex()],
                        _patient_topic(patient).to_0x_hex()],
             "fromBlock": hex(chain.deployment.deploy_block), "toBlock": "latest"}
    from kizuna.chain.transactions import node_errors

    with node_errors(chain.decoder):
        answer = chain.w3.provider.make_request(cast("RPCEndpoint", "eth_getLogs"), [query])
    if "error" in answer:
        raise NodeUnreachable(f"the node refused eth_getLogs: {answer['error']}")
    found: dict[bytes, Commitment] = {}
    for log in answer["result"]:
        topic0, key = bytes.fromhex(log["topics"][0][2:]), bytes.fromhex(log["topics"][2][2:])
        word = bytes.fromhex(log["data"][2:66])
        if topic0 == RECORD_REGISTERED:
            found.setdefault(key, Commitment(word))
        elif topic0 == RECORD_BATCH_REGISTERED and manifests is not None:
            for leaf in manifests.of(key, int.from_bytes(word, "big")).leaves:
                found.setdefault(bytes(leaf.record_id), leaf.commitment)
    return found


def batch_commitment(chain: Chain, *, patient: Address, leaf: BatchLeaf, root: bytes,
                     proof: Sequence[bytes],
                     known: MutableMapping[bytes, Address] | None = None) -> Commitment:
    """The commitment of ``leaf`` (a record the service says is in the batch ``root``), once
    the node says ``root`` is a batch of ``patient`` (``batchOf``) and ``proof`` leads from
    the leaf to it: ``NotFoundError`` / ``IntegrityError`` otherwise. ``known`` remembers the
    owner of each root the node named (a root is registered once and its owner never
    changes), so a bulk read asks the node once a batch, not once a record."""
    owner = known.get(bytes(root)) if known is not None else None
    if owner is None:
        batch = chain.ledger.batch_of(root)
        if batch is None:
            raise NotFoundError(f"no batch 0x{bytes(root).hex()} is registered on chain")
        owner = batch.patient
        if known is not None:
            known[bytes(root)] = owner
    if owner != patient:
        raise IntegrityError(f"batch 0x{bytes(root).hex()} is registered to {owner}, "
                             f"not to {patient}")
    if not proof_leads_to(root, leaf, proof):
        raise IntegrityError(f"the proof of record 0x{bytes(leaf.record_id).hex()} does not "
                             f"lead to batch 0x{bytes(root).hex()}")
    return leaf.commitment


def _patient_topic(patient: Address) -> HexBytes:
    return HexBytes(bytes(12) + bytes.fromhex(patient[2:]))


def patient_encryption_key(service: KizunaService, patient: Address) -> UmbralPublicKey:
    """The key to encrypt a message to ``patient`` with: their published inbox key, taken
    only from their statement as checked here (``proxy_domain`` is computed from the
    participant's own chain connection and deployment, not asked of the service)."""
    entry = service.inbox_key_of(patient)
    return entry.verified_key(patient=patient, domain=service.proxy_domain())


__all__ = ["RECORD_BATCH_REGISTERED", "RECORD_REGISTERED", "BatchManifests", "batch_commitment",
           "patient_encryption_key", "registered_commitment", "registered_commitments"]
