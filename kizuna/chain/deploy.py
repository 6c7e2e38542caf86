"""Deploy Kizuna's three contracts and record where they are (``deployments/<chainId>.json``).

:func:`deploy` deploys the provider registry, the consent ledger (pointing at the registry) and
the access log, grants the registrar and anchoring roles, and returns a :class:`Deployment`. The
same file format is written by the Hardhat script ``scripts/deploy.js``; ``deployments/README.md``
documents it. Transactions are signed locally with the deployer's key (nothing is sent to an
unlocked node account), so the same code deploys to anvil, eth-tester or a testnet.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from kizuna.chain.artifacts import CONTRACT_NAMES, deployment_abi_hash, load_artifact
from kizuna.chain.reverts import abi_type_string
from kizuna.errors import (
    DeploymentError,
    InputError,
    NotFoundError,
    TransactionError,
    WrongChain,
)
from kizuna.types import Address, checked_address

if TYPE_CHECKING:  # web3 only for deploying: reading the deployment file does not load it
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

FORMAT_VERSION = 1
"""Version of the deployment file format (``deployments/README.md``)."""

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "deployments"


@dataclass(frozen=True)
class Deployment:
    """Where Kizuna's contracts live on one chain, and which ABI they speak."""

    chain_id: int
    provider_registry: Address
    consent_ledger: Address
    access_log: Address
    study_registry: Address
    deploy_block: int
    abi_hash: str
    deployer: Address
    registrar: Address
    anchorer: Address

    @property
    def addresses(self) -> dict[str, Address]:
        """Contract name → address, in deployment order."""
        return {
            "ProviderRegistry": self.provider_registry,
            "ConsentLedger": self.consent_ledger,
            "AccessLog": self.access_log,
            "StudyRegistry": self.study_registry,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "chainId": self.chain_id,
            "contracts": {
                name: {"address": address, "abiHash": load_artifact(name).abi_hash}
                for name, address in self.addresses.items()
            },
            "deployBlock": self.deploy_block,
            "abiHash": self.abi_hash,
            "deployer": self.deployer,
            "roles": {"registrar": self.registrar, "anchorer": self.anchorer},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deployment:
        """Parse a deployment file's JSON; ``InputError`` names the missing or malformed field."""
        try:
            if data["format"] != FORMAT_VERSION:
                raise InputError("format", f"unsupported deployment format {data['format']!r}")
            contracts = data["contracts"]
            return cls(
                chain_id=int(data["chainId"]),
                provider_registry=_address(
                    "contracts.ProviderRegistry.address", contracts["ProviderRegistry"]["address"]
                ),
                consent_ledger=_address(
                    "contracts.ConsentLedger.address", contracts["ConsentLedger"]["address"]
                ),
                access_log=_address(
                    "contracts.AccessLog.address", contracts["AccessLog"]["address"]
                ),
                study_registry=_address(
                    "contracts.StudyRegistry.address", contracts["StudyRegistry"]["address"]
                ),
                deploy_block=int(data["deployBlock"]),
                abi_hash=str(data["abiHash"]),
                deployer=_address("deployer", data["deployer"]),
                registrar=_address("roles.registrar", data["roles"]["registrar"]),
                anchorer=_address("roles.anchorer", data["roles"]["anchorer"]),
            )
        except KeyError as missing:
            raise InputError(str(missing.args[0]), "missing from the deployment file") from None
        except (TypeError, ValueError) as exc:
            raise InputError("deployment", f"malformed: {exc}") from exc

    def save(self, directory: Path = DEFAULT_DIRECTORY) -> Path:
        """Write ``<directory>/<chainId>.json`` and return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.chain_id}.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path

    def check_abi(self) -> None:
        """``DeploymentError`` when the deployment was made from other ABIs than the shipped."""
        shipped = deployment_abi_hash()
        if self.abi_hash != shipped:
            raise DeploymentError(
                f"deployment on chain {self.chain_id} speaks ABI {self.abi_hash}, this Kizuna "
                f"ships {shipped}: redeploy or upgrade Kizuna"
            )


def _address(field: str, value: object) -> Address:
    return checked_address(field, value)


def load_deployment(chain_id: int, directory: Path = DEFAULT_DIRECTORY) -> Deployment:
    """Read ``<directory>/<chain_id>.json``; ``NotFoundError`` when there is none."""
    path = directory / f"{chain_id}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"no Kizuna deployment for chain {chain_id} ({path})") from None
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"not JSON: {exc}") from exc
    return Deployment.from_json(data)


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


def _send(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> Any:
    """Sign ``tx`` with ``account``, send it, return the receipt (``TransactionError``: failed)."""
    from web3.exceptions import Web3Exception

    tx.setdefault("from", account.address)
    tx.setdefault("nonce", w3.eth.get_transaction_count(account.address, "pending"))
    tx.setdefault("chainId", w3.eth.chain_id)
    try:
        if "gas" not in tx:
            tx["gas"] = int(w3.eth.estimate_gas(tx) * 1.2) + 10_000  # type: ignore[arg-type]
        if "maxFeePerGas" not in tx and "gasPrice" not in tx:
            base = w3.eth.get_block("latest").get("baseFeePerGas", 0)
            tip = w3.to_wei(1, "gwei")
            tx["maxPriorityFeePerGas"] = tip
            tx["maxFeePerGas"] = 2 * int(base) + tip
        signed = account.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
    except Web3Exception as exc:
        raise TransactionError(f"deploy transaction failed: {exc}") from exc
    if receipt["status"] != 1:
        raise TransactionError(f"deploy transaction {tx_hash.hex()} reverted")
    return receipt


def _deploy_contract(w3: Web3, account: LocalAccount, name: str, *args: Any) -> tuple[Address, int]:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi_list, bytecode=artifact.bytecode)
    tx = factory.constructor(*args).build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
    )
    receipt = _send(w3, account, dict(tx))
    return Address(to_checksum_address(receipt["contractAddress"])), int(receipt["blockNumber"])


def deploy(
    w3: Web3,
    deployer_account: LocalAccount,
    *,
    registrar: str | None = None,
    anchorer: str | None = None,
    directory: Path | None = DEFAULT_DIRECTORY,
) -> Deployment:
    """Deploy registry, ledger, access log and study registry; wire the roles; write the
    deployment file.

    ``registrar`` (may add and suspend providers) and ``anchorer`` (the service that anchors
    receipt roots) default to the deployer, who is also the admin of both roles. With
    ``directory=None`` no file is written (tests that only need the contracts).
    """
    deployer = Address(to_checksum_address(deployer_account.address))
    registrar_address = _address("registrar", registrar) if registrar else deployer
    anchorer_address = _address("anchorer", anchorer) if anchorer else deployer
    if w3.eth.get_balance(deployer) == 0:
        raise TransactionError(f"deployer {deployer} has no ether on chain {w3.eth.chain_id}")
    registry, first_block = _deploy_contract(
        w3, deployer_account, "ProviderRegistry", deployer, registrar_address
    )
    ledger, _ = _deploy_contract(w3, deployer_account, "ConsentLedger", registry)
    access_log, _ = _deploy_contract(w3, deployer_account, "AccessLog", deployer, anchorer_address)
    studies, _ = _deploy_contract(w3, deployer_account, "StudyRegistry", registry, ledger)
    deployment = Deployment(
        chain_id=int(w3.eth.chain_id),
        provider_registry=registry,
        consent_ledger=ledger,
        access_log=access_log,
        study_registry=studies,
        deploy_block=first_block,
        abi_hash=deployment_abi_hash(),
        deployer=deployer,
        registrar=registrar_address,
        anchorer=anchorer_address,
    )
    verify_deployment(w3, deployment)
    if directory is not None:
        deployment.save(directory)
    return deployment


def function_selectors(abi: list[dict[str, Any]]) -> dict[str, bytes]:
    """Each function of ``abi`` by its signature: its 4-byte selector."""
    found: dict[str, bytes] = {}
    for entry in abi:
        if entry.get("type") == "function":
            signature = f"{entry['name']}({','.join(abi_type_string(i) for i in entry['inputs'])})"
            found[signature] = bytes(function_signature_to_4byte_selector(signature))
    return found


def selector_push(selector: bytes) -> bytes:
    """The PUSH instruction a dispatcher uses for ``selector`` (solc drops leading zero bytes:
    ``0x00abcdef`` is ``PUSH3 abcdef``)."""
    value = selector.lstrip(b"\x00") or b"\x00"
    return bytes([0x5F + len(value)]) + value


def check_on_node(deployment: Deployment, *, chain_id: int,
                  abis: Mapping[str, list[dict[str, Any]]],
                  code_of: Callable[[Address], bytes]) -> None:
    """The rule a connection checks a deployment by, whichever client asks the node (web3's
    :meth:`~kizuna.chain.connection.Chain.verify`, or :class:`~kizuna.chain.rpc.ChainReader`):
    the node's ``chain_id`` is the deployment's, the shipped ABIs are the ones deployed, and the
    code at each address (``code_of``) dispatches every function of its contract's ABI."""
    if chain_id != deployment.chain_id:
        raise WrongChain(expected=deployment.chain_id, actual=chain_id)
    deployment.check_abi()
    for name in CONTRACT_NAMES:
        address = deployment.addresses[name]
        code = code_of(address)
        if not code:
            raise DeploymentError(
                f"no contract at {address} on chain {chain_id} (expected Kizuna's {name})"
            )
        missing = [sig for sig, sel in function_selectors(abis[name]).items()
                   if selector_push(sel) not in code]
        if missing:
            raise DeploymentError(
                f"the contract at {address} is not Kizuna's {name} "
                f"(it lacks {missing[0]}{' and more' if len(missing) > 1 else ''})"
            )


def verify_deployment(w3: Web3, deployment: Deployment) -> None:
    """Check the node's chain id and the code at every address of ``deployment``.

    Raises ``WrongChain`` for another chain, ``DeploymentError`` when an address holds no code or
    code of another length than the shipped runtime bytecode (immutables, such as the EIP-712
    domain cache, differ per deployment, so the bytes themselves are not compared).
    """
    actual_chain = int(w3.eth.chain_id)
    if actual_chain != deployment.chain_id:
        raise WrongChain(expected=deployment.chain_id, actual=actual_chain)
    for name, address in deployment.addresses.items():
        code = bytes(w3.eth.get_code(address))
        expected = bytes.fromhex(load_artifact(name).deployed_bytecode.removeprefix("0x"))
        if not code:
            raise DeploymentError(f"no contract code at {name} address {address}")
        if len(code) != len(expected):
            raise DeploymentError(
                f"{name} at {address} is not the Kizuna {name} this version ships"
            )


__all__ = [
    "CONTRACT_NAMES",
    "DEFAULT_DIRECTORY",
    "FORMAT_VERSION",
    "Deployment",
    "check_on_node",
    "deploy",
    "function_selectors",
    "load_deployment",
    "load_deployment_file",
    "selector_push",
    "verify_deployment",
]
