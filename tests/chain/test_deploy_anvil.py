"""The deploy-and-grant path once against a real anvil (npm @foundry-rs/anvil), through the
Python ``deploy()`` and through the Hardhat deploy script (whose build is also checked against
the committed artifacts here)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from kizuna.chain.artifacts import ARTIFACT_NAMES, deployment_abi_hash, load_artifact
from kizuna.chain.deploy import Deployment, deploy, load_deployment, verify_deployment
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.errors import DeploymentError, NotFoundError, TransactionError, WrongChain

pytestmark = pytest.mark.anvil


def _send(w3: Web3, key: str, call: Any) -> Any:
    account = Account.from_key(key)
    tx = call.build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    assert receipt["status"] == 1
    return receipt


def test_deploy_register_grant_revoke_on_anvil(anvil: LocalNode, tmp_path: Path) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    keys = dev_private_keys(4)
    deployer, patient, provider = (Account.from_key(k) for k in keys[:3])

    deployment = deploy(w3, deployer, directory=tmp_path)

    written = json.loads((tmp_path / "31337.json").read_text())
    assert written["chainId"] == 31337
    assert written["abiHash"] == deployment_abi_hash()
    assert set(written["contracts"]) == {"ProviderRegistry", "ConsentLedger", "AccessLog",
                                         "StudyRegistry"}
    assert load_deployment(31337, tmp_path) == deployment
    assert deployment.deploy_block <= w3.eth.block_number
    verify_deployment(w3, deployment)

    registry = w3.eth.contract(
        address=deployment.provider_registry, abi=load_artifact("ProviderRegistry").abi_list
    )
    ledger = w3.eth.contract(
        address=deployment.consent_ledger, abi=load_artifact("ConsentLedger").abi_list
    )
    assert ledger.functions.providerRegistry().call() == deployment.provider_registry
    _send(
        w3,
        keys[0],
        registry.functions.addProvider(provider.address, b"\x03" + b"\x07" * 32, b"\x01" * 32),
    )
    assert registry.functions.isActiveProvider(provider.address).call()

    scope = Web3.keccak(text="blinded scope")
    record_id = os.urandom(32)
    _send(w3, keys[1], ledger.functions.registerRecord(record_id, Web3.keccak(b"ct"), scope))
    assert ledger.functions.recordOf(record_id).call()[0] == patient.address

    expires = w3.eth.get_block("latest")["timestamp"] + 3_600
    receipt = _send(w3, keys[1], ledger.functions.grant(provider.address, scope, expires))
    (granted,) = ledger.events.AccessGranted().process_receipt(receipt)
    assert granted["args"]["patient"] == patient.address
    assert granted["args"]["provider"] == provider.address
    assert ledger.functions.hasAccess(patient.address, provider.address, scope).call()
    assert ledger.functions.accessExpiry(patient.address, provider.address, scope).call() == expires

    _send(
        w3,
        keys[2],
        ledger.functions.logCareEvent(patient.address, 5, b"\x09" * 32, provider.address, scope),
    )
    _send(w3, keys[1], ledger.functions.revoke(provider.address, scope))
    assert not ledger.functions.hasAccess(patient.address, provider.address, scope).call()


def test_verify_deployment_refuses_wrong_chain_and_missing_code(anvil: LocalNode) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    deployment = deploy(w3, Account.from_key(dev_private_keys(1)[0]), directory=None)
    with pytest.raises(WrongChain):
        verify_deployment(w3, dataclasses.replace(deployment, chain_id=1))
    empty = Account.create().address
    with pytest.raises(DeploymentError, match="no contract code at ConsentLedger"):
        verify_deployment(w3, dataclasses.replace(deployment, consent_ledger=empty))
    with pytest.raises(DeploymentError, match="speaks ABI"):
        dataclasses.replace(deployment, abi_hash="0x" + "00" * 32).check_abi()


def test_deploy_refuses_an_unfunded_deployer(anvil: LocalNode, tmp_path: Path) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    with pytest.raises(TransactionError, match="has no ether"):
        deploy(w3, Account.create(), directory=tmp_path)
    with pytest.raises(NotFoundError):
        load_deployment(31337, tmp_path)


@pytest.mark.node
def test_hardhat_deploy_script_writes_the_same_format(
    anvil: LocalNode, tmp_path: Path, project_root: Path, npx: str
) -> None:
    """One Hardhat process for the script and for Hardhat's build of the contracts: the script
    builds them itself and refuses to deploy a build that differs from the committed artifacts.
    (``--no-compile`` only skips ``hardhat run``'s own build beforehand, which would compile the
    Solidity tests as well: ~18 CPU-s more on a cold cache; forge compiles and runs those.)"""
    env = dict(os.environ, KIZUNA_RPC_URL=anvil.rpc_url, KIZUNA_DEPLOYMENTS_DIR=str(tmp_path))
    done = subprocess.run(
        [npx, "hardhat", "run", "--no-compile", "scripts/deploy.js", "--network", "localhost"],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    deployment = load_deployment(31337, tmp_path)
    assert isinstance(deployment, Deployment)
    deployment.check_abi()
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    verify_deployment(w3, deployment)
    ledger = w3.eth.contract(
        address=deployment.consent_ledger, abi=load_artifact("ConsentLedger").abi_list
    )
    assert ledger.functions.providerRegistry().call() == deployment.provider_registry
    # Hardhat's build (the one the script just made, or its cache of an identical one) is the
    # committed artifacts, byte for byte and ABI for ABI.
    for name in ARTIFACT_NAMES:
        built = json.loads(
            (project_root / "artifacts" / "contracts" / f"{name}.sol" / f"{name}.json").read_text()
        )
        assert built["bytecode"] == load_artifact(name).bytecode, name
        assert built["abi"] == load_artifact(name).abi_list, name
