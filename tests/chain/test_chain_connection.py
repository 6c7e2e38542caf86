"""Connecting: chain id, deployment file and the code at each address are checked first."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from chainenv import Env

from kizuna.chain.connection import connect, load_deployment_file
from kizuna.errors import DeploymentError, NotFoundError, WrongChain


def test_connect_with_a_deployment_file(tester_env: Env, tmp_path: Path) -> None:
    path = tester_env.deployment.save(tmp_path)
    chain = connect(tester_env.w3, path)
    assert chain.deployment == tester_env.deployment
    assert chain.head().number == tester_env.w3.eth.block_number
    assert "Chain(chain_id=" in repr(chain)


def test_node_on_another_chain_than_the_deployment_file(tester_env: Env) -> None:
    other = replace(tester_env.deployment, chain_id=tester_env.deployment.chain_id + 1)
    with pytest.raises(WrongChain) as info:
        connect(tester_env.w3, other)
    assert info.value.expected == other.chain_id
    assert info.value.actual == tester_env.chain.chain_id


def test_no_contract_at_the_configured_address(tester_env: Env) -> None:
    nobody = tester_env.new_signer(funded=False).address
    broken = replace(tester_env.deployment, consent_ledger=nobody)
    with pytest.raises(DeploymentError, match=f"no contract at {nobody}.*ConsentLedger"):
        connect(tester_env.w3, broken)


def test_another_contract_at_the_configured_address(tester_env: Env) -> None:
    swapped = replace(tester_env.deployment, consent_ledger=tester_env.deployment.access_log)
    with pytest.raises(DeploymentError, match="is not Kizuna's ConsentLedger"):
        connect(tester_env.w3, swapped)


def test_deployment_from_other_abis(tester_env: Env) -> None:
    with pytest.raises(DeploymentError, match="ABI"):
        connect(tester_env.w3, replace(tester_env.deployment, abi_hash="0x" + "00" * 32))


def test_deployment_files(tmp_path: Path, tester_env: Env) -> None:
    with pytest.raises(NotFoundError, match="no deployment file"):
        load_deployment_file(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DeploymentError, match="not JSON"):
        load_deployment_file(bad)
    data = tester_env.deployment.to_json()
    del data["contracts"]["AccessLog"]
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps(data))
    with pytest.raises(DeploymentError, match="AccessLog"):
        load_deployment_file(incomplete)


def test_dispatcher_push_of_a_selector() -> None:
    from kizuna.chain.connection import _push

    assert _push(bytes.fromhex("12345678")) == bytes.fromhex("6312345678")  # PUSH4
    assert _push(bytes.fromhex("00abcdef")) == bytes.fromhex("62abcdef")    # PUSH3
