"""The proxy-node registry agent: ``ProxyRegistry`` (contracts/ProxyRegistry.sol), the on-chain
list of threshold proxy nodes with their endpoint and verifying key (docs/proxies.md).

The registry is deployed on its own (:func:`deploy_proxy_registry`), not by the core deployment:
the deployment file and its ABI hash stay as they are, and a proxy node or a patient's client is
configured with the registry's address. Managed like the provider registry: an admin grants
``REGISTRAR_ROLE``; registrars add, suspend and reinstate nodes; a node moves its own endpoint.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.types import BlockIdentifier

from kizuna.chain.agents.base import AccessControlAgent
from kizuna.chain.index.events import EventDecoder
from kizuna.chain.models import ContractCall, TxReceipt
from kizuna.chain.signers import Signer
from kizuna.errors import ContractReverted, KizunaError
from kizuna.types import Address, checksum_address

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain

log = logging.getLogger(__name__)

REGISTRAR_ROLE = keccak(text="KIZUNA_REGISTRAR_ROLE")


@dataclass(frozen=True, slots=True)
class ProxyNode:
    """A listed proxy node, as the registry holds it at some block."""

    address: Address
    endpoint: str
    verifying_key: bytes
    """33 bytes, compressed secp256k1: the key the node signs with."""
    active: bool
    registered_at: int


class ProxyRegistryAgent(AccessControlAgent):
    """``ProxyRegistry`` at ``address`` on ``chain``."""

    contract_name: ClassVar[str] = "ProxyRegistry"

    def __init__(self, chain: Chain, address: Address) -> None:
        # Not Agent.__init__: the address comes from the node's configuration, not from the
        # deployment file (the registry is deployed on its own).
        self.chain = chain
        self.address = checksum_address(address)
        self.contract = chain.w3.eth.contract(address=self.address,
                                              abi=chain.abis[self.contract_name])
        self._events = EventDecoder({self.address: (self.contract_name,
                                                    chain.abis[self.contract_name])})

    # -- calls -------------------------------------------------------------------------------

    def node_of(self, node: Address, *, block: BlockIdentifier = "latest") -> ProxyNode | None:
        """The entry of ``node``; ``None`` when it was never listed."""
        try:
            endpoint, key, active, registered_at = self._view(
                "nodeOf", to_checksum_address(node), block=block)
        except ContractReverted as reverted:
            if reverted.name == "ProxyRegistryUnknownNode":
                return None
            raise
        return ProxyNode(address=checksum_address(node), endpoint=str(endpoint),
                         verifying_key=bytes(key), active=bool(active),
                         registered_at=int(registered_at))

    def nodes(self, *, active_only: bool = True,
              block: BlockIdentifier = "latest") -> list[ProxyNode]:
        """Every listed node (in the order added), the active ones only by default."""
        listed = [self.node_of(a, block=block) for a in self._view("nodes", block=block)]
        return [n for n in listed if n is not None and (n.active or not active_only)]

    # -- transactions ------------------------------------------------------------------------

    def add_node_call(self, node: Address, endpoint: str, verifying_key: bytes) -> ContractCall:
        return self._call("addNode", to_checksum_address(node), endpoint, bytes(verifying_key))

    def add_node(self, node: Address, endpoint: str, verifying_key: bytes, *,
                 signer: Signer) -> TxReceipt:
        """A registrar (the signer) lists ``node`` at ``endpoint`` with its verifying key."""
        return self._send(self.add_node_call(node, endpoint, verifying_key), signer)

    def suspend_node(self, node: Address, *, signer: Signer) -> TxReceipt:
        return self._send(self._call("suspendNode", to_checksum_address(node)), signer)

    def reinstate_node(self, node: Address, *, signer: Signer) -> TxReceipt:
        return self._send(self._call("reinstateNode", to_checksum_address(node)), signer)

    def set_endpoint(self, endpoint: str, *, signer: Signer) -> TxReceipt:
        """The node (the signer) moves its own endpoint."""
        return self._send(self._call("setEndpoint", endpoint), signer)


_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                   r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$")


def node_origin(endpoint: str) -> str | None:
    """The origin (``scheme://host[:port]``) of a node's registered endpoint, or ``None`` when
    the endpoint is not a plain http(s) URL. What a web page may connect to (its CSP's
    connect-src): built from checked parts only, so a registry entry can never write another
    CSP directive (``;``), a wildcard or a quote into the page's policy. The web page applies
    the same rule (web/src/provider/threshold.ts ``nodeOrigin``)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(endpoint.strip())
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or parts.username or parts.password \
            or not _HOST.match(host if ":" not in host else f"[{host}]"):
        return None
    host = f"[{host}]" if ":" in host else host.lower()
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


class RegisteredOrigins:
    """The origins of the active nodes a ProxyRegistry lists, read again at most every
    ``ttl_s`` seconds (a page load must not cost a chain round trip per node each time; a node
    added or moved is allowed within ``ttl_s``). When the chain cannot be read, the last list
    read stands."""

    def __init__(self, agent: ProxyRegistryAgent, *, ttl_s: float = 30.0) -> None:
        self.agent = agent
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._origins: tuple[str, ...] = ()

    def origins(self) -> tuple[str, ...]:
        with self._lock:
            if time.monotonic() - self._read_at < self.ttl_s:
                return self._origins
            try:
                listed = self.agent.nodes()
            except KizunaError as error:
                log.warning("the proxy registry %s could not be read: %s", self.agent.address,
                            error)
                return self._origins
            found = []
            for node in listed:
                origin = node_origin(node.endpoint)
                if origin is None:
                    log.warning("proxy node %s's endpoint %r is not a plain http(s) URL: left "
                                "out of the page's connect-src", node.address, node.endpoint)
                elif origin not in found:
                    found.append(origin)
            self._origins, self._read_at = tuple(found), time.monotonic()
            return self._origins


def deploy_proxy_registry(w3: Web3, deployer: LocalAccount, *,
                          registrar: Address | None = None) -> Address:
    """Deploy a ``ProxyRegistry`` administered by ``deployer`` (registrar: ``registrar`` or the
    deployer); its address."""
    from kizuna.chain.deploy import _deploy_contract  # the one home of a contract's deployment

    admin = checksum_address(deployer.address)
    address, _ = _deploy_contract(w3, deployer, "ProxyRegistry", admin,
                                 checksum_address(registrar) if registrar else admin)
    return address


__all__ = ["REGISTRAR_ROLE", "ProxyNode", "ProxyRegistryAgent", "RegisteredOrigins",
           "deploy_proxy_registry", "node_origin"]
