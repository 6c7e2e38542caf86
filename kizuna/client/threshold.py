"""The participants' side of threshold proxy nodes (docs/proxies.md): the patient's grant makes
m-of-n key fragments, binds each to its node and hands each node only its own; the provider's
read goes to the nodes in parallel and combines m verified capsule fragments.

A deployment lists its nodes in the ProxyRegistry (:class:`ProxySet`, from the chain). When a
client has a proxy set, :class:`~kizuna.client.patient.PatientClient` grants through it and
:class:`~kizuna.client.provider.ProviderClient` reads through it; without one, both keep the
service's 1-of-1 path.

Where the provider learns m and the set: from the patient's own signature. Every node keeps
the patient's ``NodeKfrag`` statement of its fragment (the node, the whole set's digest, the
threshold, the kfrag's digest) and sends it with each answer; the provider checks the
signature and counts only nodes of the signed set. A node cannot lower m (it cannot sign for
the patient) and, were m lower than the patient chose, Umbral would still not open the data
key with fewer cfrags than the threshold the kfrags were made with.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from kizuna.client.http import read_grant_of
from kizuna.crypto import pre
from kizuna.errors import AccessDenied, InputError, KizunaError
from kizuna.proxy.threshold import (
    Combined,
    NodeAnswer,
    NodeKfrag,
    NodeStatement,
    NotEnoughNodes,
    ask_nodes,
    combine_cfrags,
    default_threshold,
    split_for_nodes,
)
from kizuna.receipts.request import ReadRequest
from kizuna.storage.envelope import read_header
from kizuna.tls import http_client
from kizuna.types import Address, Cid, RecordId, ScopeId, checksum_address
from kizuna.wire.consent import GrantResult
from kizuna.wire.reads import ReadGrant

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.client.patient import PatientClient
    from kizuna.client.provider import ProviderClient
    from kizuna.wire.records import RecordInfo

log = logging.getLogger(__name__)


class ProxyNodeError(KizunaError):
    """A proxy node did not answer, refused, or answered something that is not a read."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The node's HTTP status when it refused; ``None`` when it did not answer."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProxySet:
    """The deployment's proxy nodes (address → endpoint) and the threshold a patient's grant
    asks for (m of these n)."""

    nodes: Mapping[Address, str]
    threshold: int

    def __post_init__(self) -> None:
        if not self.nodes:
            raise InputError("nodes", "a proxy set needs at least one node")
        if isinstance(self.threshold, bool) or not 1 <= self.threshold <= len(self.nodes):
            raise InputError("threshold", f"must be in [1, {len(self.nodes)}] for "
                                          f"{len(self.nodes)} proxy nodes, got {self.threshold}")

    @classmethod
    def from_registry(cls, chain: Chain, registry: Address, *,
                      threshold: int | None = None) -> ProxySet | None:
        """The active nodes the ProxyRegistry at ``registry`` lists, ``threshold`` of them
        (default: 2 once there are 3 or more, else 1); ``None`` when it lists none."""
        from kizuna.chain.agents.proxies import ProxyRegistryAgent

        listed = ProxyRegistryAgent(chain, registry).nodes()
        if not listed:
            return None
        m = threshold if threshold is not None else default_threshold(len(listed))
        return cls(nodes={n.address: n.endpoint for n in listed}, threshold=m)


def _hx(data: bytes) -> str:
    return "0x" + bytes(data).hex()


_http_lock = threading.Lock()
_http_clients: list[httpx.Client] = []


def _http() -> httpx.Client:
    """The process's one HTTP client for proxy nodes (thread-safe, kept-alive connections), not
    a client and a connection for each of a read's requests to its nodes."""
    with _http_lock:
        if not _http_clients:
            _http_clients.append(http_client(""))
        return _http_clients[0]


def _post(endpoint: str, path: str, body: Mapping[str, Any], *,
          timeout_s: float) -> dict[str, Any]:
    """POST JSON to a node; its error (or an unreachable node) as a ``ProxyNodeError``."""
    try:
        answer = _http().post(endpoint.rstrip("/") + path, json=body, timeout=timeout_s)
    except httpx.HTTPError as error:
        raise ProxyNodeError(f"proxy node {endpoint} did not answer: {error}") from None
    if answer.status_code != 200:
        try:
            detail = answer.json().get("error", {}).get("message", answer.text)
        except ValueError:
            detail = answer.text
        raise ProxyNodeError(f"proxy node {endpoint} refused ({answer.status_code}): {detail}",
                             status=answer.status_code)
    data = answer.json()
    if not isinstance(data, dict):
        raise ProxyNodeError(f"proxy node {endpoint} answered {type(data).__name__}, not an object")
    return data


# -- the patient's side ----------------------------------------------------------------------


def hand_kfrags(endpoints: Mapping[Address, str], statements: Sequence[NodeKfrag], *,
                delegating_key: pre.UmbralPublicKey, verifying_key: pre.UmbralPublicKey,
                scope_keys_signature: bytes, timeout_s: float = 10.0) -> None:
    """The patient's side: each node gets only its own fragment (and the ScopeKeys statement)."""
    by_node = {checksum_address(a): e for a, e in endpoints.items()}
    for statement in statements:
        endpoint = by_node.get(statement.node)
        if endpoint is None:
            raise InputError("endpoints", f"no endpoint for proxy node {statement.node}")
        _post(endpoint, "/node/kfrags", {
            "patient": statement.patient, "scope_id": _hx(statement.scope_id),
            "provider": statement.provider, "epoch": statement.epoch,
            "nodes": list(statement.nodes), "threshold": statement.threshold,
            "kfrag": _hx(statement.kfrag), "signature": _hx(statement.signature),
            "delegating_key": _hx(delegating_key.to_bytes()),
            "verifying_key": _hx(verifying_key.to_bytes()),
            "scope_keys_signature": _hx(scope_keys_signature)}, timeout_s=timeout_s)


def _record_body(*, record_id: RecordId, cid: Cid, epoch: int,
                 record: RecordInfo | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"record_id": _hx(record_id), "cid": cid, "epoch": epoch}
    if record is not None and record.batch_root is not None and record.proof is not None:
        from kizuna.batch import unpack_proof

        body.update(batch_root=_hx(record.batch_root), scope_id=_hx(record.scope_id),
                    commitment=_hx(record.commitment), leaf_index=record.leaf_index,
                    proof=[_hx(p) for p in unpack_proof(record.proof)])
    return body


def announce_record(endpoints: Mapping[Address, str], *, record_id: RecordId, cid: Cid, epoch: int,
                    record: RecordInfo | None = None, timeout_s: float = 30.0) -> None:
    """Tell every node of a record it may serve (each checks it against the chain and the
    store itself; a batch record with its root and proof, from ``record``)."""
    body = _record_body(record_id=record_id, cid=cid, epoch=epoch, record=record)
    for endpoint in endpoints.values():
        _post(endpoint, "/node/records", body, timeout_s=timeout_s)


def hand_epoch(client: PatientClient, proxies: ProxySet, *, provider: Address,
               receiving: pre.UmbralPublicKey, scope_id: ScopeId, epoch: int) -> int:
    """The fragments of (scope, epoch) for ``provider``: m-of-n, one per node, each bound to
    its node by a wallet signature and sent to that node only; how many were handed."""
    domain = client.service.proxy_domain()
    nodes = list(proxies.nodes)
    statements = split_for_nodes(
        client.signer, domain, patient=client.address, scope_id=scope_id, provider=provider,
        epoch=epoch, delegating_sk=client.keys.scope_secret(scope_id, epoch),
        receiving_key=receiving, signer=client.keys.wallet.signer(), nodes=nodes,
        threshold=proxies.threshold)
    delegating = client.keys.scope_public(scope_id, epoch)
    typed = client.service.scope_keys_statement(
        patient=client.address, scope_id=scope_id, delegating_key=delegating.to_bytes(),
        verifying_key=client.keys.verifying_key.to_bytes(), epoch=epoch)
    hand_kfrags(proxies.nodes, statements, delegating_key=delegating,
                verifying_key=client.keys.verifying_key,
                scope_keys_signature=client.signer.sign_typed_data(typed))
    return len(statements)


def grant_through_nodes(client: PatientClient, proxies: ProxySet, provider: Address,
                        scope_ids: Mapping[ScopeId, int], *, expires_at: int) -> GrantResult:
    """The patient's grant through a proxy set: the grant on-chain (the patient's own
    transaction: the service is not asked to hold anything), then, per scope and per key
    epoch the scope has records of, the m-of-n fragments handed to the nodes, and the scope's
    records announced to every node. ``scope_ids``: scope → its current epoch."""

    ids = list(scope_ids)
    receiving = client.service.provider_key(provider)
    receipt = (client.chain.ledger.grant(provider, ids[0], expires_at, signer=client.signer)
               if len(ids) == 1 else
               client.chain.ledger.grant_batch(provider, ids, expires_at, signer=client.signer))
    handed = 0
    for sid, current in scope_ids.items():
        records = client.records_of_scope(sid)
        for epoch in sorted({r.epoch for r in records if r.epoch < current} | {current}):
            handed += hand_epoch(client, proxies, provider=provider, receiving=receiving,
                                 scope_id=sid, epoch=epoch)
        for record in records:
            try:
                announce_record(proxies.nodes, record_id=record.record_id, cid=record.cid,
                                epoch=record.epoch, record=record)
            except ProxyNodeError as error:
                # The grant stands; a node told nothing here is told again at the first read
                # (threshold_grant), and a read it cannot serve names why.
                log.warning("a proxy node did not take record 0x%s: %s",
                            bytes(record.record_id).hex(), error)
    return GrantResult(patient=client.address, provider=provider, scope_ids=tuple(ids),
                       expires_at=expires_at, tx_hash=receipt.tx_hash,
                       block_number=receipt.block_number, kfrags_stored=handed)


# -- the provider's side ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ThresholdRead:
    """A threshold read's outcome: the plaintext and which nodes served or were skipped."""

    plaintext: bytes
    served_by: tuple[Address, ...]
    skipped: dict[Address, str]


def _statement_of(answer: Mapping[str, Any], node: Address, grant: ReadGrant,
                  provider: Address) -> NodeStatement:
    raw = answer.get("node_statement")
    if not isinstance(raw, Mapping):
        raise ProxyNodeError(f"proxy node {node} sent no statement of its fragment")
    try:
        return NodeStatement(
            patient=checksum_address(grant.patient), scope_id=grant.scope_id,
            provider=checksum_address(provider), epoch=int(raw["epoch"]), node=node,
            nodes=tuple(checksum_address(n) for n in raw["nodes"]),
            threshold=int(raw["threshold"]),
            kfrag_digest=bytes.fromhex(str(raw["kfrag_digest"]).removeprefix("0x")),
            signature=bytes.fromhex(str(raw["signature"]).removeprefix("0x")))
    except (KeyError, TypeError, ValueError) as error:
        raise ProxyNodeError(f"proxy node {node} sent a malformed statement: {error}") from None


def threshold_grant(provider: ProviderClient, endpoints: Mapping[Address, str], *,
                    patient: str, record_id: bytes, threshold: int = 1,
                    find_record: Callable[[], RecordInfo | None] | None = None,
                    timeout_s: float = 10.0) -> tuple[ReadGrant, Combined]:
    """ONE signed request sent to every node at once. Each answer's statement must be the
    patient's signature binding that node's fragment to this provider (else the node is
    skipped); m and the set are the ones the patient signed (the grant most nodes name first;
    at least ``threshold``) and only nodes of that set count. Each cfrag is verified (Umbral's
    proof) against the envelope's capsule; the grant returned carries m verified cfrags from
    distinct nodes, to open with :meth:`ProviderClient.open_to` as any read. ``find_record``
    (the listing's row, looked up only then) lets a node that does not know the record yet be
    told of it (it checks it itself) and asked again. ``NotEnoughNodes`` naming each node that
    failed and why, otherwise."""
    by_node = {checksum_address(a): e for a, e in endpoints.items()}
    request = ReadRequest.new(provider=provider.address, patient=patient, record_id=record_id)
    signature = provider.signer.sign_typed_data(
        request.typed_data(provider.service.proxy_domain()))
    body = {"request": request.to_json(), "signature": _hx(signature)}
    domain = provider.service.proxy_domain()
    grants: dict[Address, ReadGrant] = {}
    statements: dict[Address, NodeStatement] = {}

    def ask(node: Address) -> bytes:
        try:
            answer = _post(by_node[node], "/node/reads", body, timeout_s=timeout_s)
        except ProxyNodeError as error:
            record = find_record() if error.status == 404 and find_record else None
            if record is None:
                raise
            # The node does not know the record (added after the grant): tell it, ask again.
            _post(by_node[node], "/node/records", _record_body(
                record_id=RecordId(bytes(record_id)), cid=record.cid, epoch=record.epoch,
                record=record), timeout_s=timeout_s)
            answer = _post(by_node[node], "/node/reads", body, timeout_s=timeout_s)
        grant = read_grant_of(answer)
        if len(grant.cfrags) != 1:
            raise ProxyNodeError(f"proxy node {node} answered {len(grant.cfrags)} capsule "
                                 "fragments, not its one")
        statement = _statement_of(answer, node, grant, provider.address)
        statement.check(domain)
        grants[node] = grant
        statements[node] = statement
        return grant.cfrags[0]

    answers = ask_nodes(list(by_node), ask, timeout_s=timeout_s)
    if not grants:
        raise NotEnoughNodes("no proxy node served the read: " + "; ".join(
            f"{a.node}: {a.error}" for a in answers))
    envelope = _envelope(provider, grants)
    capsule = read_header(envelope).capsule
    # The grant's (set, m) as the patient signed it, named by most nodes first: a node showing
    # a genuine statement of an older grant (another set or m) is counted only with that
    # grant, so it can neither raise m for the others nor add its cfrag to theirs.
    groups: dict[tuple[tuple[Address, ...], int], list[Address]] = {}
    for node, statement in statements.items():
        key = (tuple(sorted(statement.nodes)), max(threshold, statement.threshold))
        groups.setdefault(key, []).append(node)
    failure: KizunaError | None = None
    for (signed_set, m), named in sorted(groups.items(), key=lambda g: -len(g[1])):
        elsewhere = {n for other in groups.values() if other is not named for n in other}
        try:
            combined, grant = _combine(answers, grants, capsule=capsule, threshold=m,
                                       members=set(signed_set) - elsewhere,
                                       receiving_key=provider.public_key)
        except KizunaError as error:
            failure = failure or error
            continue
        chosen = dataclasses.replace(grant, envelope=envelope,
                                     cfrags=tuple(c.to_bytes() for c in combined.cfrags[:m]))
        return chosen, combined
    assert failure is not None
    raise failure


def threshold_read(provider: ProviderClient, endpoints: Mapping[Address, str], *, patient: str,
                   record_id: bytes, threshold: int = 1, timeout_s: float = 10.0) -> ThresholdRead:
    """:func:`threshold_grant`, then the envelope opened and checked against the on-chain
    commitment by :meth:`ProviderClient.open`."""
    grant, combined = threshold_grant(provider, endpoints, patient=patient,
                                      record_id=record_id, threshold=threshold,
                                      timeout_s=timeout_s)
    assert grant.envelope is not None
    return ThresholdRead(plaintext=provider.open(grant, grant.envelope),
                         served_by=combined.served_by, skipped=combined.skipped)


def _envelope(provider: ProviderClient, grants: Mapping[Address, ReadGrant]) -> bytes:
    """The envelope: inline in an answer, else from the content store by CID (either way the
    provider checks it against the on-chain commitment when opening)."""
    for grant in grants.values():
        if grant.envelope is not None:
            return grant.envelope
    grant = next(iter(grants.values()))
    return b"".join(provider.service.fetch(grant.cid))


def _combine(answers: Sequence[NodeAnswer], grants: Mapping[Address, ReadGrant], *,
             capsule: pre.Capsule, threshold: int, members: set[Address],
             receiving_key: pre.UmbralPublicKey) -> tuple[Combined, ReadGrant]:
    """Nodes name the patient's keys; a lying node may name others. Try each distinct key
    pair the nodes named, the most-named first: the pair under which ``threshold`` cfrags
    verify wins (a lie can never add a cfrag that verifies under the honest pair)."""
    pairs: dict[tuple[bytes, bytes], list[Address]] = {}
    for node, grant in grants.items():
        pairs.setdefault((grant.delegating_key, grant.verifying_key), []).append(node)
    last: KizunaError | None = None
    for (delegating, verifying), named_by in sorted(pairs.items(), key=lambda p: -len(p[1])):
        try:
            keys = (pre.UmbralPublicKey.from_bytes(delegating, field="delegating_key"),
                    pre.UmbralPublicKey.from_bytes(verifying, field="verifying_key"))
            combined = combine_cfrags(answers, nodes=sorted(members), threshold=threshold,
                                      capsule=capsule, delegating_key=keys[0],
                                      verifying_key=keys[1], receiving_key=receiving_key)
        except KizunaError as error:
            last = error
            continue
        return combined, grants[named_by[0]]
    assert last is not None
    raise last


def read_through(provider: ProviderClient, proxies: ProxySet, *, patient: str,
                 record_id: bytes) -> ReadGrant:
    """What :meth:`ProviderClient.request_read` does with a proxy set: the read served by m
    nodes (the record's listing row looked up first, to tell a node that does not know it).
    ``AccessDenied`` (a ``NotEnoughNodes``) naming each node that refused and why."""
    from kizuna.types import checked_address

    owner = checked_address("patient", patient)

    def find_record() -> RecordInfo | None:
        return next((r for r in provider.records(patient=owner)
                     if bytes(r.record_id) == bytes(record_id)), None)

    try:
        grant, _combined = threshold_grant(provider, proxies.nodes, patient=owner,
                                           record_id=record_id, find_record=find_record)
    except NotEnoughNodes as error:
        raise ThresholdRefused(str(error)) from None
    return grant


class ThresholdRefused(AccessDenied):
    """Fewer than m proxy nodes served a read (the message names each node and why)."""


__all__ = ["ProxyNodeError", "ProxySet", "ThresholdRead", "ThresholdRefused", "announce_record",
           "grant_through_nodes", "hand_epoch", "hand_kfrags",
           "read_through", "threshold_grant", "threshold_read"]
