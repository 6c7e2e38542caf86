"""The chain tests' environment: the Kizuna contracts deployed on eth-tester (py-evm, in process),
on a real anvil or on a Hardhat node, behind one :class:`Env` (fixtures in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3

from kizuna.chain.connection import Chain, connect, web3_for
from kizuna.chain.deploy import Deployment, deploy
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.chain.models import ContractCall
from kizuna.chain.signers import LocalKeySigner
from kizuna.chain.transactions import TxPolicy
from kizuna.types import ScopeId

FUNDING = 10**18


@dataclass
class Env:
    """A deployment on one backend, with funded signers and clock control."""

    backend: str
    w3: Web3
    chain: Chain
    deployment: Deployment
    admin: LocalKeySigner
    """Deployer, registrar and anchorer."""
    funder: LocalKeySigner
    _made: list[LocalKeySigner] = field(default_factory=list)

    def new_signer(self, *, funded: bool = True) -> LocalKeySigner:
        """A fresh key, funded with 1 ETH by the admin (so tests never share nonces)."""
        signer = LocalKeySigner.generate()
        if funded:
            self.fund(signer.address)
        self._made.append(signer)
        return signer

    def fund(self, address: str, amount: int = FUNDING) -> None:
        call = ContractCall(to=to_checksum_address(address), data=b"", value=amount)
        self.chain.sender.transact(call, self.funder, gas=21_000)

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block."""
        if self.backend == "eth_tester":
            tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            tester.time_travel(self.now() + seconds)
        else:
            self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            if self.backend == "eth_tester":
                self.w3.provider.ethereum_tester.mine_blocks(1)  # type: ignore[attr-defined]
            else:
                self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def scope(label: str) -> ScopeId:
    """A 32-byte scope id for tests (the real ones are blinded per patient elsewhere)."""
    return ScopeId(bytes(keccak(text=f"scope:{label}")))


def _eth_tester_env(policy: TxPolicy | None = None) -> Env:
    from web3 import EthereumTesterProvider

    provider = EthereumTesterProvider()
    w3 = Web3(provider)
    keys = provider.ethereum_tester.backend.account_keys
    admin_key = keys[0].to_hex() if hasattr(keys[0], "to_hex") else keys[0]
    funder_key = keys[1].to_hex() if hasattr(keys[1], "to_hex") else keys[1]
    deployment = deploy(w3, Account.from_key(admin_key), directory=None)
    chain = connect(w3, deployment, policy=policy)
    return Env("eth_tester", w3, chain, deployment, LocalKeySigner(admin_key),
               LocalKeySigner(funder_key))


def _anvil_env(node: LocalNode, policy: TxPolicy | None = None) -> Env:
    w3 = web3_for(node.rpc_url)
    keys = dev_private_keys(10)
    # The last dev keys: other suites use the first ones; funding comes from the 10th key.
    admin_key, funder_key = keys[8], keys[9]
    deployment = deploy(w3, Account.from_key(admin_key), directory=None)
    chain = connect(node.rpc_url, deployment, policy=policy)
    return Env("anvil", chain.w3, chain, deployment, LocalKeySigner(admin_key),
               LocalKeySigner(funder_key))


def hardhat_env(url: str) -> Env:
    """A fresh deployment on a Hardhat node (same dev mnemonic as anvil)."""
    w3 = web3_for(url)
    keys = dev_private_keys(10)
    admin_key, funder_key = keys[8], keys[9]
    deployment = deploy(w3, Account.from_key(admin_key), directory=None)
    chain = connect(url, deployment)
    return Env("hardhat", chain.w3, chain, deployment, LocalKeySigner(admin_key),
               LocalKeySigner(funder_key))


