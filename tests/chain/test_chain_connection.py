"""Connecting: chain id, deployment file and the code at each address are checked first."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from chainenv import Env

from kizuna.chain.connection import (
    chain_id_free_validation,
    connect,
    load_deployment_file,
    web3_for,
)
from kizuna.chain.models import ContractCall
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


@pytest.mark.anvil
def test_no_chain_id_request_beside_each_call(anvil_env: Env) -> None:
    """A connection made from a URL asks the node for its chain id once, at connect: web3's
    default validation asked ``eth_chainId`` twice beside every view, simulation and gas
    estimate (kizuna.chain.connection.chain_id_free_validation). What the node answers is
    unchanged: the views, a transaction, the head block."""
    w3 = web3_for(anvil_env.chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    provider = w3.provider
    asked: list[str] = []
    send = provider.make_request

    def counted(method: Any, params: Any) -> Any:
        asked.append(str(method))
        return send(method, params)

    # Before the first request: web3 composes its middleware around the provider's method then.
    provider.make_request = counted  # type: ignore[method-assign]
    chain = connect(w3, anvil_env.deployment)
    assert set(asked) == {"eth_chainId", "eth_getCode"}  # connect's own checks
    asked.clear()
    assert chain.registry.is_registrar(anvil_env.admin.address)
    assert not chain.registry.is_registrar(anvil_env.new_signer(funded=False).address)
    someone = anvil_env.new_signer(funded=False).address
    receipt = chain.sender.transact(ContractCall(to=someone, data=b"", value=1),
                                    anvil_env.funder)
    assert receipt.status == 1 and chain.w3.eth.get_balance(someone) == 1
    assert chain.head().number == receipt.block_number
    assert "eth_call" in asked and "eth_estimateGas" in asked
    assert "eth_sendRawTransaction" in asked and "eth_getBlockByNumber" in asked
    assert "eth_chainId" not in asked, asked


def test_blocks_of_a_proof_of_authority_chain_still_refused() -> None:
    """The half of web3's validation web3_for keeps: a block whose extraData is longer than
    32 bytes is refused (ExtraDataLengthError), as before."""
    from web3._utils.rpc_abi import RPC
    from web3.exceptions import ExtraDataLengthError
    from web3.middleware.formatting import FormattingMiddlewareBuilder

    built = chain_id_free_validation()(web3_for("http://127.0.0.1:1"))
    assert isinstance(built, FormattingMiddlewareBuilder)
    assert not built.request_formatters  # nothing asked or checked before a request
    formatters = built.result_formatters
    check = formatters[RPC.eth_getBlockByNumber]
    assert check({"number": 1, "extraData": "0x" + "00" * 32})["number"] == 1
    with pytest.raises(ExtraDataLengthError):
        check({"number": 1, "extraData": "0x" + "00" * 33})
    assert formatters[RPC.eth_getBlockByHash] is check
