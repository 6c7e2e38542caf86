"""One connection to an Ethereum node and a Kizuna deployment on it, checked before use.

:func:`connect` opens the JSON-RPC endpoint, checks that it answers (``NodeUnreachable``), that it
is on the chain id the deployment file names (``WrongChain``), and that every configured address
holds the Kizuna contract it should (``DeploymentError``: no code there, or code that lacks the
contract's functions). The resulting :class:`Chain` owns what every agent shares: the web3
instance, the revert decoder built from all Kizuna ABIs, the transaction sender with its nonce
manager, and the EIP-712 domain of the ledger.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.providers.rpc import HTTPProvider

from kizuna.chain.agents.access_log import AccessLogAgent
from kizuna.chain.agents.ledger import ConsentLedgerAgent
from kizuna.chain.agents.registry import ProviderRegistryAgent
from kizuna.chain.agents.studies import StudyRegistryAgent
from kizuna.chain.artifacts import ARTIFACT_NAMES, load_artifact
from kizuna.chain.deploy import Deployment, check_on_node, load_deployment, load_deployment_file
from kizuna.chain.deploy import selector_push as _push  # noqa: F401  (tests/chain checks it)
from kizuna.chain.eip712 import Eip712Domain, ledger_domain
from kizuna.chain.models import BlockRef
from kizuna.chain.reverts import RevertDecoder
from kizuna.chain.transactions import TransactionSender, TxPolicy, node_errors
from kizuna.errors import NodeUnreachable, WrongChain
from kizuna.types import Address


class Chain:
    """A checked connection: node + deployment + shared decoder, sender and domain.

    Build it with :func:`connect`. Agents are created on first use (``chain.ledger``, ...).
    """

    def __init__(self, w3: Web3, deployment: Deployment, *, policy: TxPolicy | None = None,
                 chain_id: int | None = None) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.chain_id = deployment.chain_id if chain_id is None else chain_id
        self.abis: dict[str, list[dict[str, Any]]] = {
            # every artifact: the proxy-node registry is deployed on its own, but its reverts
            # go through this decoder too (kizuna.chain.agents.proxies)
            name: load_artifact(name).abi_list for name in ARTIFACT_NAMES
        }
        self.decoder = RevertDecoder(self.abis.values())
        self.sender = TransactionSender(w3, chain_id=self.chain_id, decoder=self.decoder,
                                        policy=policy)

    def contract(self, name: str) -> Contract:
        """The web3 contract object of a Kizuna contract (for the agents)."""
        return self.w3.eth.contract(address=self.deployment.addresses[name], abi=self.abis[name])

    @property
    def ledger_domain(self) -> Eip712Domain:
        return ledger_domain(chain_id=self.chain_id,
                             ledger=self.deployment.consent_ledger)

    def head(self) -> BlockRef:
        """The latest block: number, hash, timestamp."""
        with node_errors(self.decoder):
            block = self.w3.eth.get_block("latest")
        return BlockRef(number=int(block["number"]), hash=bytes(block["hash"]),
                        timestamp=int(block["timestamp"]))

    def verify(self) -> None:
        """Check the chain id and that each address holds the right contract (the rule:
        :func:`~kizuna.chain.deploy.check_on_node`)."""
        with node_errors(self.decoder):
            actual = int(self.w3.eth.chain_id)

        def code_of(address: Address) -> bytes:
            with node_errors(self.decoder):
                return bytes(self.w3.eth.get_code(address))

        check_on_node(self.deployment, chain_id=actual, abis=self.abis, code_of=code_of)

    # -- agents (one per contract, created on first use) -------------------------------------

    @cached_property
    def ledger(self) -> ConsentLedgerAgent:
        return ConsentLedgerAgent(self)

    @cached_property
    def registry(self) -> ProviderRegistryAgent:
        return ProviderRegistryAgent(self)

    @cached_property
    def access_log(self) -> AccessLogAgent:
        return AccessLogAgent(self)

    @cached_property
    def studies(self) -> StudyRegistryAgent:
        return StudyRegistryAgent(self)

    def __repr__(self) -> str:
        return f"Chain(chain_id={self.chain_id}, ledger={self.deployment.consent_ledger})"


def web3_for(rpc_url: str, *, timeout: float = 10.0) -> Web3:
    """A web3 instance for an HTTP JSON-RPC endpoint: web3's default middleware, except that
    its ``validation`` layer keeps only the check of the blocks' ``extraData``
    (:func:`chain_id_free_validation`)."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    w3.middleware_onion.replace("validation", chain_id_free_validation())
    return w3


def chain_id_free_validation() -> Any:
    """web3's ``validation`` middleware without its chain-id half.

    That half asks the node ``eth_chainId`` before every ``eth_call``, ``eth_estimateGas``,
    ``eth_sendTransaction`` and ``eth_createAccessList`` -- twice, in fact, as web3 builds the
    request's and the answer's formatters apart: three requests where one was meant, on every
    view, simulation and gas estimate -- only to refuse a ``chainId`` field that differs from
    the node's. Kizuna puts no ``chainId`` in those calls; it signs its transactions with the
    chain id :func:`connect` checked, and a node on another chain refuses them (``WrongChain``,
    :meth:`~kizuna.chain.transactions.TransactionSender.broadcast`). The other half stays: a
    block whose ``extraData`` is longer than 32 bytes (a proof-of-authority chain) is refused
    as web3 refuses it."""
    from web3._utils.rpc_abi import RPC
    from web3.middleware.formatting import FormattingMiddlewareBuilder
    from web3.middleware.validation import block_validator

    return FormattingMiddlewareBuilder.build(result_formatters={
        RPC.eth_getBlockByHash: block_validator, RPC.eth_getBlockByNumber: block_validator})


def connect(
    node: str | Web3,
    deployment: Deployment | str | os.PathLike[str] | None = None,
    *,
    policy: TxPolicy | None = None,
    verify: bool = True,
    timeout: float = 10.0,
) -> Chain:
    """Connect to ``node`` (an RPC URL or a Web3) and check the Kizuna ``deployment`` on it.

    Without a deployment, ``deployments/<chainId>.json`` of the node's chain id is used.
    """
    w3 = web3_for(node, timeout=timeout) if isinstance(node, str) else node
    decoder = RevertDecoder()
    try:
        with node_errors(decoder):
            chain_id = int(w3.eth.chain_id)
    except NodeUnreachable as exc:
        where = node if isinstance(node, str) else "the configured node"
        raise NodeUnreachable(f"the Ethereum node at {where} does not answer: {exc}") from None
    if deployment is None:
        loaded = load_deployment(chain_id)
    elif isinstance(deployment, Deployment):
        loaded = deployment
    else:
        loaded = load_deployment_file(deployment)
    if loaded.chain_id != chain_id:
        raise WrongChain(expected=loaded.chain_id, actual=chain_id)
    chain = Chain(w3, loaded, policy=policy, chain_id=chain_id)
    if verify:
        chain.verify()
    return chain


__all__ = ["Chain", "Deployment", "chain_id_free_validation", "connect",
           "load_deployment_file", "web3_for"]
