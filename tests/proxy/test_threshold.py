"""m-of-n threshold proxies (kizuna.proxy.threshold): node-bound fragments, the provider's
combination of verified cfrags, a lying or missing node. Real Umbral, real wallet signatures;
each "node" re-encrypts with its own fragment only (the grant is the test-only placeholder, the
access check is tested on its own)."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable

import pytest
from eth_account import Account

from kizuna.access.grant import placeholder_verified_grant
from kizuna.chain.signers import LocalKeySigner
from kizuna.crypto import pre
from kizuna.errors import AccessDenied, InputError
from kizuna.proxy.threshold import (
    NodeKfrag,
    NotEnoughNodes,
    accept_node_kfrag,
    ask_nodes,
    combine_cfrags,
    split_for_nodes,
)
from kizuna.receipts.request import proxy_domain
from kizuna.types import Address, RecordId, ScopeId

DOMAIN = proxy_domain(chain_id=31337, access_log=Account.create().address)
SCOPE = ScopeId(b"\x07" * 32)


@dataclasses.dataclass
class Setup:
    wallet: bytes
    patient: Address
    provider: Address
    scope_sk: pre.UmbralSecretKey
    signer: pre.UmbralSigner
    provider_sk: pre.UmbralSecretKey
    nodes: tuple[Address, ...]
    statements: tuple[NodeKfrag, ...]
    capsule: pre.Capsule
    wrapped: bytes


def _setup(threshold: int = 2, shares: int = 3) -> Setup:
    wallet = Account.create()
    provider = Account.create().address
    scope_sk, signing_sk, provider_sk = (pre.UmbralSecretKey.random() for _ in range(3))
    signer = pre.UmbralSigner(signing_sk)
    nodes = tuple(Account.create().address for _ in range(shares))
    statements = split_for_nodes(LocalKeySigner(wallet.key), DOMAIN, patient=wallet.address,
                                 scope_id=SCOPE,
                                 provider=provider, epoch=0, delegating_sk=scope_sk,
                                 receiving_key=provider_sk.public_key, signer=signer,
                                 nodes=nodes, threshold=threshold)
    capsule, wrapped = pre.encrypt(scope_sk.public_key, b"the data key")
    return Setup(bytes(wallet.key), wallet.address, provider, scope_sk, signer, provider_sk,
                 nodes, statements, capsule, wrapped)


def _node_cfrag(s: Setup, statement: NodeKfrag, node: Address) -> bytes:
    """What an honest node does: accept its bound fragment, re-encrypt under a grant."""
    kfrag = accept_node_kfrag(DOMAIN, statement, node=node,
                              delegating_key=s.scope_sk.public_key,
                              verifying_key=s.signer.verifying_key,
                              receiving_key=s.provider_sk.public_key)
    grant = placeholder_verified_grant(patient=s.patient, grantee=s.provider,
                                       grantee_key=s.provider_sk.public_key,
                                       record_id=RecordId(b"\x01" * 32), scope_id=SCOPE,
                                       expires_at=int(time.time()) + 3600)
    return pre.reencrypt(s.capsule, kfrag, grant=grant).to_bytes()


def _open(s: Setup, answers: list) -> bytes:  # type: ignore[type-arg]
    combined = combine_cfrags(answers, nodes=s.nodes, threshold=2, capsule=s.capsule,
                              verifying_key=s.signer.verifying_key,
                              delegating_key=s.scope_sk.public_key,
                              receiving_key=s.provider_sk.public_key)
    return pre.decrypt_reencrypted(s.provider_sk, s.scope_sk.public_key, s.capsule,
                                   combined.cfrags, s.wrapped, threshold=2)


def _only(s: Setup, up: tuple[Address, ...]) -> Callable[[Address], bytes]:
    """Ask a node: the nodes in ``up`` answer honestly, the others are down."""
    honest = {st.node: st for st in s.statements}

    def ask(node: Address) -> bytes:
        if node not in up:
            raise ConnectionError("node down")
        return _node_cfrag(s, honest[node], node)

    return ask


def test_any_two_of_three_nodes_open_and_one_does_not() -> None:
    s = _setup()
    for up in itertools.combinations(s.nodes, 2):
        assert _open(s, ask_nodes(s.nodes, _only(s, up))) == b"the data key"
    for alone in s.nodes:
        with pytest.raises(NotEnoughNodes, match="2 proxy nodes must serve the read, 1 did"):
            _open(s, ask_nodes(s.nodes, _only(s, (alone,))))


def _raise(error: Exception) -> bytes:
    raise error


def test_a_node_cannot_use_another_nodes_fragment() -> None:
    s = _setup()
    a, b, _ = s.statements
    with pytest.raises(AccessDenied, match="bound to proxy node"):
        _node_cfrag(s, b, a.node)
    # Re-labelling the statement for itself breaks the patient's signature.
    forged = dataclasses.replace(b, node=a.node)
    with pytest.raises(AccessDenied, match="not by the patient"):
        _node_cfrag(s, forged, a.node)
    # Its own statement with another node's kfrag bytes: the digest no longer matches.
    swapped = dataclasses.replace(a, kfrag=b.kfrag)
    with pytest.raises(AccessDenied, match="not by the patient"):
        _node_cfrag(s, swapped, a.node)


def test_one_node_holding_two_fragments_still_counts_once() -> None:
    """A node that got hold of another node's cfrag and answers with it is one node: the
    provider counts the set's nodes, and a repeated cfrag is skipped."""
    s = _setup()
    a, b, _c = s.statements
    cfrag_a = _node_cfrag(s, a, a.node)
    answers = ask_nodes(s.nodes, lambda n: cfrag_a if n in (a.node, b.node)
                        else _raise(ConnectionError("down")))
    with pytest.raises(NotEnoughNodes) as caught:
        _open(s, answers)
    assert "repeats another node's capsule fragment" in str(caught.value)


def test_a_lying_node_is_detected_and_skipped() -> None:
    s = _setup()
    a, b, c = s.statements
    # b's cfrag for another capsule: well-formed, but not a re-encryption of this one.
    other_capsule, _ = pre.encrypt(s.scope_sk.public_key, b"other")
    kfrag_b = accept_node_kfrag(DOMAIN, b, node=b.node, delegating_key=s.scope_sk.public_key,
                                verifying_key=s.signer.verifying_key,
                                receiving_key=s.provider_sk.public_key)
    grant = placeholder_verified_grant(patient=s.patient, grantee=s.provider,
                                       grantee_key=s.provider_sk.public_key,
                                       record_id=RecordId(b"\x01" * 32), scope_id=SCOPE,
                                       expires_at=int(time.time()) + 3600)
    lie = pre.reencrypt(other_capsule, kfrag_b, grant=grant).to_bytes()
    answers = ask_nodes(s.nodes, lambda n: lie if n == b.node else _node_cfrag(
        s, {st.node: st for st in s.statements}[n], n))
    combined = combine_cfrags(answers, nodes=s.nodes, threshold=2, capsule=s.capsule,
                              verifying_key=s.signer.verifying_key,
                              delegating_key=s.scope_sk.public_key,
                              receiving_key=s.provider_sk.public_key)
    assert set(combined.served_by) == {a.node, c.node}
    assert "wrong capsule fragment" in combined.skipped[b.node]
    assert pre.decrypt_reencrypted(s.provider_sk, s.scope_sk.public_key, s.capsule,
                                   combined.cfrags, s.wrapped, threshold=2) == b"the data key"
    # With the liar and one honest node only, the read fails (the lie never counts).
    answers = ask_nodes(s.nodes, lambda n: lie if n == b.node else (
        _node_cfrag(s, a, n) if n == a.node else _raise(ConnectionError("down"))))
    with pytest.raises(NotEnoughNodes):
        _open(s, answers)


def test_a_node_outside_the_set_is_not_counted() -> None:
    s = _setup()
    stranger = Account.create().address
    a = s.statements[0]
    cfrag_a = _node_cfrag(s, a, a.node)
    answers = ask_nodes([a.node, stranger], lambda n: cfrag_a)
    with pytest.raises(NotEnoughNodes, match="not in the grant's proxy set"):
        _open(s, answers)


def test_split_refuses_a_threshold_above_the_set_and_duplicate_nodes() -> None:
    s = _setup()
    with pytest.raises(InputError, match="threshold"):
        split_for_nodes(LocalKeySigner(s.wallet), DOMAIN, patient=s.patient, scope_id=SCOPE,
                        provider=s.provider, epoch=0, delegating_sk=s.scope_sk,
                        receiving_key=s.provider_sk.public_key, signer=s.signer,
                        nodes=s.nodes[:2], threshold=3)
    with pytest.raises(InputError, match="each node once"):
        split_for_nodes(LocalKeySigner(s.wallet), DOMAIN, patient=s.patient, scope_id=SCOPE,
                        provider=s.provider, epoch=0, delegating_sk=s.scope_sk,
                        receiving_key=s.provider_sk.public_key, signer=s.signer,
                        nodes=(s.nodes[0], s.nodes[0]), threshold=1)


def test_a_slow_node_is_an_answer_not_a_failure() -> None:
    s = _setup()
    honest = {st.node: st for st in s.statements}
    slow = s.nodes[2]

    def ask(n: Address) -> bytes:
        if n == slow:
            time.sleep(2)
        return _node_cfrag(s, honest[n], n)

    started = time.monotonic()
    answers = ask_nodes(s.nodes, ask, timeout_s=0.5)
    assert time.monotonic() - started < 1.8
    assert str(next(a.error for a in answers if a.node == slow)).startswith("no answer")
    assert _open(s, answers) == b"the data key"


def test_nodes_that_hang_cost_one_timeout_together_not_one_each() -> None:
    s = _setup()
    release = threading.Event()
    serve = _only(s, s.nodes)

    def ask(node: Address) -> bytes:
        if node != s.nodes[2]:
            release.wait(5)  # two nodes hang
        return serve(node)

    began = time.monotonic()
    answers = ask_nodes(s.nodes, ask, timeout_s=0.5)
    waited = time.monotonic() - began
    release.set()
    assert [a.error for a in answers[:2]] == ["no answer within 0.5 s"] * 2
    assert answers[2].cfrag is not None
    assert waited < 0.9, waited  # one deadline (0.5 s), not 0.5 s per hanging node
