"""The participants' side of threshold proxy nodes (docs/proxies.md): the patient hands each
node its own bound fragment and the records it may serve; the provider reads from the nodes in
parallel and combines m verified capsule fragments.

Nodes are named by address with their endpoint (``{address: "http://host:port"}``), as the
ProxyRegistry lists them (:class:`kizuna.chain.agents.proxies.ProxyRegistryAgent`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from kizuna.client.http import read_grant_of
from kizuna.crypto import pre
from kizuna.errors import InputError, KizunaError
from kizuna.proxy.threshold import (
    Combined,
    NodeAnswer,
    NodeKfrag,
    NotEnoughNodes,
    ask_nodes,
    combine_cfrags,
)
from kizuna.receipts.request import ReadRequest
from kizuna.services.read import ReadGrant
from kizuna.storage.envelope import read_header
from kizuna.types import Address, Cid, RecordId, checksum_address

if TYPE_CHECKING:
    from kizuna.client.provider import ProviderClient


class ProxyNodeError(KizunaError):
    """A proxy node did not answer, refused, or answered something that is not a read."""


def _hx(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def _post(endpoint: str, path: str, body: Mapping[str, Any], *,
          timeout_s: float) -> dict[str, Any]:
    """POST JSON to a node; its error (or an unreachable node) as a ``ProxyNodeError``."""
    try:
        answer = httpx.post(endpoint.rstrip("/") + path, json=body, timeout=timeout_s)
    except httpx.HTTPError as error:
        raise ProxyNodeError(f"proxy node {endpoint} did not answer: {error}") from None
    if answer.status_code != 200:
        try:
            detail = answer.json().get("error", {}).get("message", answer.text)
        except ValueError:
            detail = answer.text
        raise ProxyNodeError(f"proxy node {endpoint} refused ({answer.status_code}): {detail}")
    data = answer.json()
    if not isinstance(data, dict):
        raise ProxyNodeError(f"proxy node {endpoint} answered {type(data).__name__}, not an object")
    return data


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


def announce_record(endpoints: Mapping[Address, str], *, record_id: RecordId, cid: Cid, epoch: int,
                    timeout_s: float = 30.0) -> None:
    """Tell every node of a record it may serve (each checks it against the chain and the
    store itself)."""
    for endpoint in endpoints.values():
        _post(endpoint, "/node/records", {"record_id": _hx(record_id), "cid": cid,
                                          "epoch": epoch}, timeout_s=timeout_s)


@dataclasses.dataclass(frozen=True, slots=True)
class ThresholdRead:
    """A threshold read's outcome: the plaintext and which nodes served or were skipped."""

    plaintext: bytes
    served_by: tuple[Address, ...]
    skipped: dict[Address, str]


def threshold_read(provider: ProviderClient, endpoints: Mapping[Address, str], *, patient: str,
                   record_id: bytes, threshold: int, timeout_s: float = 10.0) -> ThresholdRead:
    """The provider's side: ONE signed request sent to every node at once; each node's answer
    parsed, its cfrag verified (Umbral's proof) against the envelope's capsule, the patient's
    keys the node names and this provider's key; ``threshold`` verified cfrags from distinct
    nodes open the data key; the envelope is checked against the on-chain commitment by
    :meth:`ProviderClient.open` as for any read. ``NotEnoughNodes`` otherwise."""
    by_node = {checksum_address(a): e for a, e in endpoints.items()}
    request = ReadRequest.new(provider=provider.address, patient=patient, record_id=record_id)
    signature = provider.signer.sign_typed_data(
        request.typed_data(provider.service.proxy_domain()))
    body = {"request": request.to_json(), "signature": _hx(signature)}
    grants: dict[Address, ReadGrant] = {}

    def ask(node: Address) -> bytes:
        grant = read_grant_of(_post(by_node[node], "/node/reads", body, timeout_s=timeout_s))
        if len(grant.cfrags) != 1:
            raise ProxyNodeError(f"proxy node {node} answered {len(grant.cfrags)} capsule "
                               "fragments, not its one")
        grants[node] = grant
        return grant.cfrags[0]

    answers = ask_nodes(list(by_node), ask, timeout_s=timeout_s)
    if not grants:
        raise NotEnoughNodes("no proxy node served the read: " + "; ".join(
            f"{a.node}: {a.error}" for a in answers))
    envelope = _envelope(provider, grants)
    capsule = read_header(envelope).capsule
    combined, grant = _combine(answers, grants, capsule=capsule, threshold=threshold,
                               receiving_key=provider.public_key)
    opened = provider.open(dataclasses.replace(
        grant, cfrags=tuple(c.to_bytes() for c in combined.cfrags)), envelope)
    return ThresholdRead(plaintext=opened, served_by=combined.served_by,
                         skipped=combined.skipped)


def _envelope(provider: ProviderClient, grants: Mapping[Address, ReadGrant]) -> bytes:
    """The envelope: inline in an answer, else from the content store by CID (either way the
    provider checks it against the on-chain commitment when opening)."""
    for grant in grants.values():
        if grant.envelope is not None:
            return grant.envelope
    grant = next(iter(grants.values()))
    return b"".join(provider.service.fetch(grant.cid))


def _combine(answers: Sequence[NodeAnswer], grants: Mapping[Address, ReadGrant], *,
             capsule: pre.Capsule, threshold: int,
             receiving_key: pre.UmbralPublicKey) -> tuple[Combined, ReadGrant]:
    """Nodes name the patient's keys; a lying node may name others. Try each distinct key
    pair the nodes named, the most-named first: the pair under which ``threshold`` cfrags
    verify wins (a lie can never add a cfrag that verifies under the honest pair)."""
    pairs: dict[tuple[bytes, bytes], list[Address]] = {}
    for node, grant in grants.items():
        pairs.setdefault((grant.delegating_key, grant.verifying_key), []).append(node)
    last: KizunaError | None = None
    members = list(grants)
    for (delegating, verifying), named_by in sorted(pairs.items(), key=lambda p: -len(p[1])):
        try:
            keys = (pre.UmbralPublicKey.from_bytes(delegating, field="delegating_key"),
                    pre.UmbralPublicKey.from_bytes(verifying, field="verifying_key"))
            combined = combine_cfrags(answers, nodes=members + [a.node for a in answers
                                                                if a.node not in grants],
                                      threshold=threshold, capsule=capsule,
                                      delegating_key=keys[0], verifying_key=keys[1],
                                      receiving_key=receiving_key)
        except KizunaError as error:
            last = error
            continue
        return combined, grants[named_by[0]]
    assert last is not None
    raise last


__all__ = ["ProxyNodeError", "ThresholdRead", "announce_record", "hand_kfrags", "threshold_read"]
