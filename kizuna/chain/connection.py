"""One connection to an Ethereum node and a Kizuna deployment on it, checked before use.

:func:`connect` opens the JSON-RPC endpoint, checks that it answers (``NodeUnreachable``), that it
is on the chain id the deployment file names (``WrongChain``), and that every configured address
holds the Kizuna contract it should (``DeploymentError``: no code there, or code that lacks the
contract's functions). The resulting :class:`Chain` owns what every agent shares: the web3
instance, the revert decoder built from all Kizuna ABIs, the transaction sender with its nonce
manager, and the EIP-712 domain of the ledger.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_utils.abi import function_signature_to_4byte_selector
from web3 import Web3
from web3.contract import Contract
from web3.providers.rpc import HTTPProvider

from kizuna.chain.agents.access_log import AccessLogAgent
from kizuna.chain.agents.ledger import ConsentLedgerAgent
from kizuna.chain.agents.registry import ProviderRegistryAgent
from kizuna.chain.agents.studies import StudyRegistryAgent
from kizuna.chain.artifacts import ARTIFACT_NAMES, CONTRACT_NAMES, load_artifact
from kizuna.chain.deploy import Deployment, load_deployment
from kizuna.chain.eip712 import Eip712Domain, ledger_domain
from kizuna.chain.models import BlockRef
from kizuna.chain.reverts import RevertDecoder, abi_type_string
from kizuna.chain.transactions import TransactionSender, TxPolicy, node_errors
from kizuna.errors import DeploymentError, InputError, NodeUnreachable, NotFoundError, WrongChain


def load_deployment_file(path: str | os.PathLike[str]) -> Deployment:
    """Read a deployment file at any path; ``NotFoundError`` / ``DeploymentError`` name it."""
    target = Path(path)
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"no deployment file at {target}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DeploymentError(f"deployment {target} is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise DeploymentError(f"deployment {target} is not a JSON object")
    try:
        return Deployment.from_json(data)
    except InputError as exc:
        raise DeploymentError(f"deployment {target}: {exc}") from None


def _selectors(abi: list[dict[str, Any]]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in abi:
        if entry.get("type") == "function":
            signature = f"{entry['name']}({','.join(abi_type_string(i) for i in entry['inputs'])})"
            found[signature] = bytes(function_signature_to_4byte_selector(signature))
    return found


def _push(selector: bytes) -> bytes:
    """The PUSH instruction a dispatcher uses for ``selector`` (solc drops leading zero bytes:
    ``0x00abcdef`` is ``PUSH3 abcdef``)."""
    value = selector.lstrip(b"\x00") or b"\x00"
    return bytes([0x5F + len(value)]) + value


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
        """Check the chain id and that each address holds the right contract."""
        with node_errors(self.decoder):
            actual = int(self.w3.eth.chain_id)
        if actual != self.deployment.chain_id:
            raise WrongChain(expected=self.deployment.chain_id, actual=actual)
        self.deployment.check_abi()
        for name in CONTRACT_NAMES:
            address = self.deployment.addresses[name]
            with node_errors(self.decoder):
                code = bytes(self.w3.eth.get_code(address))
            if not code:
                raise DeploymentError(
                    f"no contract at {address} on chain {actual} (expected Kizuna's {name})"
                )
            missing = [sig for sig, sel in _selectors(self.abis[name]).items()
                       if _push(sel) not in code]
            if missing:
                raise DeploymentError(
                    f"the contract at {address} is not Kizuna's {name} "
                    f"(it lacks {missing[0]}{' and more' if len(missing) > 1 else ''})"
                )

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
    """A web3 instance for an HTTP JSON-RPC endpoint (no middleware: plain, fast requests)."""
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))


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


__all__ = ["Chain", "Deployment", "connect", "load_deployment_file", "web3_for"]
