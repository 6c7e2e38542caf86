"""m-of-n threshold proxies: key fragments bound to proxy nodes, and the provider's combination
of the nodes' capsule fragments (docs/proxies.md).

Three steps, one per party::

    patient:  split_for_nodes(...)      one kfrag per node, each with a NodeKfrag statement the
                                        patient's wallet signs (EIP-712, proxy domain)
    node:     accept_node_kfrag(...)    keeps only a fragment whose statement names *this* node,
                                        is signed by the patient and whose kfrag verifies
    provider: ask_nodes(...)            asks every node in parallel (each checks the chain itself)
              combine_cfrags(...)       verifies each cfrag, skips the wrong ones, needs m

Why the binding
---------------
A kfrag alone says nothing about which proxy should hold it: a node that obtained another node's
fragment (a leaked database, a compromised transport) could present it as its own and so count
twice towards the threshold. The statement fixes, per fragment, the node address, the kfrag's
keccak digest, the threshold, the whole node set (as a digest) and the (patient, scope,
provider, epoch) it belongs to; a node refuses a statement naming another node, so holding two
fragments does not let one node answer twice, and the provider counts at most one cfrag per
node of the set.

The chain grant stays as it is (ConsentLedger is unchanged): the proxy set and the threshold of
a grant live in these off-chain statements, which every node of the set holds for its own
fragment, and the nodes themselves are listed on-chain in the ProxyRegistry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kizuna.chain.eip712 import Eip712Domain, TypedData
from kizuna.chain.signers import Signer
from kizuna.crypto import pre
from kizuna.crypto.wallet_keys import checked_epoch
from kizuna.errors import AccessDenied, FragmentError, InputError, KizunaError
from kizuna.hashing import keccak
from kizuna.signatures import recover_signable
from kizuna.types import Address, ScopeId, checksum_address

NODE_KFRAG_FIELDS: tuple[tuple[str, str], ...] = (
    ("patient", "address"),
    ("scopeId", "bytes32"),
    ("provider", "address"),
    ("epoch", "uint64"),
    ("node", "address"),
    ("nodesDigest", "bytes32"),
    ("threshold", "uint8"),
    ("kfragDigest", "bytes32"),
)


class NotEnoughNodes(FragmentError):
    """Fewer than the threshold of proxy nodes answered with a verified capsule fragment."""


def default_threshold(nodes: int) -> int:
    """The issue's default: 2-of-n once there are at least 3 nodes, else 1 (1-of-1, 1-of-2)."""
    return 2 if nodes >= 3 else 1


def nodes_digest(nodes: Sequence[Address]) -> bytes:
    """The digest of a proxy set: keccak of the sorted, checksummed addresses' 20-byte forms.
    Sorted, so the set's order does not matter; duplicates are refused."""
    addresses = sorted(checksum_address(n) for n in nodes)
    if len(set(addresses)) != len(addresses):
        raise InputError("nodes", "a proxy set names each node once")
    return keccak(b"".join(bytes.fromhex(a[2:]) for a in addresses))


@dataclass(frozen=True, slots=True)
class NodeKfrag:
    """One node's key fragment with the patient's signed statement binding it to that node."""

    patient: Address
    scope_id: ScopeId
    provider: Address
    epoch: int
    node: Address
    nodes: tuple[Address, ...]
    """The whole proxy set of the grant (each node's statement names it)."""
    threshold: int
    kfrag: bytes
    signature: bytes

    def typed_data(self, domain: Eip712Domain) -> TypedData:
        return node_kfrag_typed_data(domain, patient=self.patient, scope_id=self.scope_id,
                                     provider=self.provider, epoch=self.epoch, node=self.node,
                                     nodes=self.nodes, threshold=self.threshold,
                                     kfrag=self.kfrag)


def node_kfrag_typed_data(domain: Eip712Domain, *, patient: Address, scope_id: bytes,
                          provider: Address, epoch: int, node: Address,
                          nodes: Sequence[Address], threshold: int, kfrag: bytes | None = None,
                          kfrag_digest: bytes | None = None) -> TypedData:
    """The statement binding ``kfrag`` (or the kfrag of keccak ``kfrag_digest``: what a
    provider checks, who never sees the kfrag) to ``node`` of the proxy set ``nodes`` (proxy
    domain)."""
    if (kfrag is None) == (kfrag_digest is None):
        raise InputError("kfrag", "give the kfrag or its digest, one of them")
    digest = keccak(bytes(kfrag)) if kfrag is not None else bytes(kfrag_digest or b"")
    if len(digest) != 32:
        raise InputError("kfrag_digest", "must be exactly 32 bytes")
    if len(scope_id) != 32:
        raise InputError("scopeId", "must be exactly 32 bytes")
    node = checksum_address(node)
    if node not in {checksum_address(n) for n in nodes}:
        raise InputError("node", f"{node} is not in the proxy set")
    if isinstance(threshold, bool) or not isinstance(threshold, int) \
            or not 1 <= threshold <= len(nodes):
        raise InputError("threshold", f"must be in [1, {len(nodes)}], got {threshold!r}")
    return TypedData(domain=domain, primary_type="NodeKfrag",
                     types={"NodeKfrag": NODE_KFRAG_FIELDS},
                     message={"patient": checksum_address(patient),
                              "scopeId": "0x" + bytes(scope_id).hex(),
                              "provider": checksum_address(provider),
                              "epoch": checked_epoch("epoch", epoch),
                              "node": node,
                              "nodesDigest": "0x" + nodes_digest(nodes).hex(),
                              "threshold": threshold,
                              "kfragDigest": "0x" + digest.hex()})


def split_for_nodes(wallet: Signer, domain: Eip712Domain, *, patient: Address,
                    scope_id: ScopeId, provider: Address, epoch: int,
                    delegating_sk: pre.UmbralSecretKey, receiving_key: pre.UmbralPublicKey,
                    signer: pre.UmbralSigner, nodes: Sequence[Address],
                    threshold: int) -> tuple[NodeKfrag, ...]:
    """The patient's side: ``len(nodes)`` kfrags, any ``threshold`` of which open the scope's
    capsules for ``receiving_key``, one per node, each signed to its node by the patient's
    ``wallet`` (a local key, or a browser wallet through its ``eth_signTypedData_v4``)."""
    node_list = tuple(checksum_address(n) for n in nodes)
    nodes_digest(node_list)  # refuses duplicates before any key work
    kfrags = pre.generate_kfrags(delegating_sk, receiving_key, signer, threshold=threshold,
                                 shares=len(node_list))
    statements = []
    for node, kfrag in zip(node_list, kfrags, strict=True):
        raw = kfrag.to_bytes()
        typed = node_kfrag_typed_data(domain, patient=patient, scope_id=scope_id,
                                      provider=provider, epoch=epoch, node=node,
                                      nodes=node_list, threshold=threshold, kfrag=raw)
        signature = bytes(wallet.sign_typed_data(typed))
        statements.append(NodeKfrag(patient=checksum_address(patient),
                                    scope_id=ScopeId(bytes(scope_id)),
                                    provider=checksum_address(provider), epoch=epoch, node=node,
                                    nodes=node_list, threshold=threshold, kfrag=raw,
                                    signature=signature))
    return tuple(statements)


def accept_node_kfrag(domain: Eip712Domain, statement: NodeKfrag, *, node: Address,
                      delegating_key: pre.UmbralPublicKey, verifying_key: pre.UmbralPublicKey,
                      receiving_key: pre.UmbralPublicKey) -> pre.VerifiedKeyFrag:
    """A node's check of a fragment handed to it: the statement names this ``node``, is signed
    by the patient, covers exactly these kfrag bytes, and the kfrag verifies against the
    patient's registered scope keys and the provider's registry key. ``AccessDenied`` (which
    binding failed) or ``FragmentError`` (the kfrag itself) otherwise."""
    node = checksum_address(node)
    if statement.node != node:
        raise AccessDenied(f"the key fragment is bound to proxy node {statement.node}, "
                           f"not to this node {node}")
    typed = statement.typed_data(domain)
    signer = recover_signable(typed.signable(), statement.signature)
    if signer != statement.patient:
        raise AccessDenied(f"the node key fragment statement is signed by {signer}, not by the "
                           f"patient {statement.patient}")
    return pre.KeyFrag.from_bytes(statement.kfrag).verify(
        verifying_key=verifying_key, delegating_key=delegating_key, receiving_key=receiving_key)


@dataclass(frozen=True, slots=True)
class NodeStatement:
    """A node's fragment as a provider sees it: the patient's signed statement, with the
    kfrag's digest in place of the kfrag (a read answer carries it)."""

    patient: Address
    scope_id: ScopeId
    provider: Address
    epoch: int
    node: Address
    nodes: tuple[Address, ...]
    threshold: int
    kfrag_digest: bytes
    signature: bytes

    def check(self, domain: Eip712Domain) -> None:
        """``AccessDenied`` unless the patient signed exactly this statement."""
        typed = node_kfrag_typed_data(domain, patient=self.patient, scope_id=self.scope_id,
                                      provider=self.provider, epoch=self.epoch,
                                      node=self.node, nodes=self.nodes,
                                      threshold=self.threshold, kfrag_digest=self.kfrag_digest)
        signer = recover_signable(typed.signable(), self.signature)
        if signer != checksum_address(self.patient):
            raise AccessDenied(f"the node's statement is signed by {signer}, not by the "
                               f"patient {self.patient}")


@dataclass(frozen=True, slots=True)
class NodeAnswer:
    """What one node answered to a read: its cfrag, or why it gave none."""

    node: Address
    cfrag: bytes | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Combined:
    """The verified cfrags (one per node, at least ``threshold``) and who was skipped why."""

    cfrags: tuple[pre.VerifiedCapsuleFrag, ...]
    served_by: tuple[Address, ...]
    skipped: dict[Address, str] = field(default_factory=dict)


def combine_cfrags(answers: Sequence[NodeAnswer], *, nodes: Sequence[Address], threshold: int,
                   capsule: pre.Capsule, verifying_key: pre.UmbralPublicKey,
                   delegating_key: pre.UmbralPublicKey,
                   receiving_key: pre.UmbralPublicKey) -> Combined:
    """The provider's side: keep each answer whose cfrag verifies (Umbral's proof of correct
    re-encryption), at most one per node of the set; skip (and say why) a node that failed, is
    not in the set, answered twice, or sent a cfrag that does not verify or repeats another
    node's. ``NotEnoughNodes`` when fewer than ``threshold`` remain."""
    members = {checksum_address(n) for n in nodes}
    kept: list[pre.VerifiedCapsuleFrag] = []
    served: list[Address] = []
    skipped: dict[Address, str] = {}
    for answer in answers:
        node = checksum_address(answer.node)
        if node not in members:
            skipped[node] = "not in the grant's proxy set"
            continue
        if node in served or node in skipped:
            skipped[node] = "answered more than once"
            continue
        if answer.cfrag is None:
            skipped[node] = answer.error or "no capsule fragment"
            continue
        try:
            verified = pre.CapsuleFrag.from_bytes(answer.cfrag).verify(
                capsule=capsule, verifying_key=verifying_key, delegating_key=delegating_key,
                receiving_key=receiving_key)
        except KizunaError as error:
            skipped[node] = f"wrong capsule fragment: {error}"
            continue
        if verified in kept:
            skipped[node] = "repeats another node's capsule fragment"
            continue
        kept.append(verified)
        served.append(node)
    if len(kept) < threshold:
        reasons = "; ".join(f"{n}: {why}" for n, why in skipped.items()) or "no answers"
        raise NotEnoughNodes(f"{threshold} proxy nodes must serve the read, {len(kept)} did "
                             f"({reasons})")
    return Combined(cfrags=tuple(kept), served_by=tuple(served), skipped=skipped)


def ask_nodes(nodes: Sequence[Address], ask: Callable[[Address], bytes], *,
              timeout_s: float = 10.0) -> list[NodeAnswer]:
    """Ask every node at once (``ask(node)`` returns its cfrag bytes or raises); a node that
    fails or does not answer within ``timeout_s`` is an answer with its error, never a failure
    of the whole read (the threshold decides, in :func:`combine_cfrags`). One deadline for all:
    the nodes are asked together, so a read waits ``timeout_s`` at most however many hang."""
    node_list = [checksum_address(n) for n in nodes]
    pool = ThreadPoolExecutor(max_workers=max(1, len(node_list)),
                              thread_name_prefix="kizuna-proxy-ask")
    try:
        futures = {node: pool.submit(ask, node) for node in node_list}
        deadline = time.monotonic() + timeout_s
        answers = []
        for node, future in futures.items():
            try:
                left = max(0.0, deadline - time.monotonic())
                answers.append(NodeAnswer(node=node, cfrag=bytes(future.result(left))))
            except TimeoutError:
                answers.append(NodeAnswer(node=node, error=f"no answer within {timeout_s} s"))
            except Exception as error:  # any node failure is that node's answer, not ours
                answers.append(NodeAnswer(node=node, error=f"{type(error).__name__}: {error}"))
        return answers
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["NODE_KFRAG_FIELDS", "Combined", "NodeAnswer", "NodeKfrag", "NodeStatement",
           "NotEnoughNodes",
           "accept_node_kfrag", "ask_nodes", "combine_cfrags", "default_threshold",
           "node_kfrag_typed_data",
           "nodes_digest", "split_for_nodes"]
