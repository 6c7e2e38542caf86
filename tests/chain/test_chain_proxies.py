"""The proxy-node registry agent (kizuna.chain.agents.proxies) on a real anvil: deploy on its
own, list nodes, suspend and reinstate, a node moves its endpoint, strangers are refused."""

from __future__ import annotations

import pytest
from chainenv import Env
from eth_account import Account

from kizuna.chain.agents.proxies import ProxyNode, ProxyRegistryAgent, deploy_proxy_registry
from kizuna.chain.signers import LocalKeySigner
from kizuna.errors import ContractReverted

KEY_A = b"\x02" + b"\x11" * 32
KEY_B = b"\x03" + b"\x22" * 32


def _registry(env: Env) -> tuple[ProxyRegistryAgent, LocalKeySigner]:
    deployer = Account.create()
    env.fund(deployer.address)
    registrar = env.new_signer()
    address = deploy_proxy_registry(env.w3, deployer, registrar=registrar.address)
    return ProxyRegistryAgent(env.chain, address), registrar


def test_nodes_are_listed_suspended_and_moved(anvil_env: Env) -> None:
    registry, registrar = _registry(anvil_env)
    node_a, node_b = anvil_env.new_signer(), anvil_env.new_signer()
    assert registry.nodes() == [] and registry.node_of(node_a.address) is None
    registry.add_node(node_a.address, "http://127.0.0.1:8801", KEY_A, signer=registrar)
    registry.add_node(node_b.address, "http://127.0.0.1:8802", KEY_B, signer=registrar)
    listed = registry.nodes()
    assert [n.address for n in listed] == [node_a.address, node_b.address]
    assert isinstance(listed[0], ProxyNode) and listed[0].verifying_key == KEY_A
    assert listed[1].endpoint == "http://127.0.0.1:8802" and listed[1].active
    registry.suspend_node(node_b.address, signer=registrar)
    assert [n.address for n in registry.nodes()] == [node_a.address]
    assert [n.active for n in registry.nodes(active_only=False)] == [True, False]
    registry.reinstate_node(node_b.address, signer=registrar)
    registry.set_endpoint("https://a.example", signer=node_a)
    entry = registry.node_of(node_a.address)
    assert entry is not None and entry.endpoint == "https://a.example"


def test_strangers_cannot_add_or_move(anvil_env: Env) -> None:
    registry, registrar = _registry(anvil_env)
    stranger = anvil_env.new_signer()
    with pytest.raises(ContractReverted, match="AccessControlUnauthorizedAccount"):
        registry.add_node(stranger.address, "http://x", KEY_A, signer=stranger)
    with pytest.raises(ContractReverted, match="ProxyRegistryUnknownNode"):
        registry.set_endpoint("http://evil", signer=stranger)
    with pytest.raises(ContractReverted, match="ProxyRegistryInvalidVerifyingKey"):
        registry.add_node(stranger.address, "http://x", b"\x04" * 33, signer=registrar)
