"""The offline Solidity toolchain: committed artifacts are fresh, loadable without Node, and the
interfaces keep the project's conventions (named errors, indexed patient/provider). Hardhat's
build of the same sources is checked against them where the Hardhat deploy script builds it
(test_deploy_anvil.py), so that one Hardhat process does both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kizuna.chain import compile as solc
from kizuna.chain.artifacts import (
    ARTIFACT_NAMES,
    CONTRACT_NAMES,
    abi_hash,
    all_artifacts,
    deployment_abi_hash,
    load_artifact,
)
from kizuna.chain.deploy import Deployment
from kizuna.errors import InputError, NotFoundError


@pytest.fixture(scope="module")
def fresh() -> dict[str, solc.CompiledContract]:
    """One fresh compile of contracts/ through py-solc-x and scripts/solc, for the module."""
    return solc.compile_contracts()


def test_committed_artifacts_equal_a_fresh_compile(fresh: dict[str, solc.CompiledContract]) -> None:
    for name, contract in fresh.items():
        committed = (solc.ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert committed == solc.render(contract), (
            f"kizuna/chain/artifacts/{name}.json is stale: "
            "run python -m kizuna.chain.compile --write"
        )


def test_fresh_compile_uses_the_pinned_compiler_and_settings(
    fresh: dict[str, solc.CompiledContract],
) -> None:
    contract = fresh["ConsentLedger"]
    assert contract.compiler.startswith("0.8.30+commit")
    data = contract.to_json()
    assert data["compiler"]["settings"]["evmVersion"] == "cancun"
    assert data["compiler"]["settings"]["optimizer"] == {"enabled": True, "runs": 10_000}
    # Runtime code must stay deployable (EIP-170).
    for compiled in fresh.values():
        assert len(bytes.fromhex(compiled.deployed_bytecode[2:])) <= 24_576


def test_stale_artifacts_are_detected(
    tmp_path: Path, fresh: dict[str, solc.CompiledContract]
) -> None:
    assert sorted(solc.stale_artifacts(tmp_path, fresh)) == sorted(ARTIFACT_NAMES)  # none yet
    solc.write_artifacts(tmp_path, fresh)
    assert solc.stale_artifacts(tmp_path, fresh) == []
    ledger = tmp_path / "ConsentLedger.json"
    data = json.loads(ledger.read_text())
    data["bytecode"] = data["bytecode"][:-2] + "00"
    ledger.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    assert solc.stale_artifacts(tmp_path, fresh) == ["ConsentLedger"]


def test_source_hash_changes_with_any_source_or_setting() -> None:
    base = solc.source_hash({"a.sol": "contract A {}"}, "0.8.30")
    assert solc.source_hash({"a.sol": "contract A { }"}, "0.8.30") != base
    assert solc.source_hash({"b.sol": "contract A {}"}, "0.8.30") != base
    assert solc.source_hash({"a.sol": "contract A {}"}, "0.8.29") != base


def test_check_command_exits_zero_when_fresh(
    monkeypatch: pytest.MonkeyPatch,
    fresh: dict[str, solc.CompiledContract],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the command over the module's fresh compile (a second one costs ~6 CPU-s of solc); that
    # compile's own freshness is the first test's
    monkeypatch.setattr(solc, "compile_contracts", lambda: fresh)
    assert solc.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_artifacts_load_without_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no node, no solc: loading is pure JSON
    artifacts = all_artifacts()
    assert set(artifacts) == set(ARTIFACT_NAMES)
    ledger = artifacts["ConsentLedger"]
    functions = {e["name"] for e in ledger.abi if e["type"] == "function"}
    assert {"grant", "grantBatch", "revoke", "revokeAll", "hasAccess", "accessExpiry"} <= functions
    assert {"grantBySig", "registerRecordBySig", "logCareEvent", "openEmergencyAccess"} <= functions
    assert ledger.bytecode.startswith("0x") and len(ledger.bytecode) > 1_000
    assert ledger.abi_hash == abi_hash(ledger.abi_list)
    assert deployment_abi_hash().startswith("0x") and len(deployment_abi_hash()) == 66


def test_unknown_artifact_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="no Kizuna contract named 'Token'"):
        load_artifact("Token")


@pytest.mark.parametrize("name", ARTIFACT_NAMES)
def test_errors_name_their_component_and_events_index_patient_and_provider(name: str) -> None:
    abi = load_artifact(name).abi
    own_errors = [e["name"] for e in abi if e["type"] == "error"]
    foreign = (
        "AccessControl",
        "ECDSA",
        "InvalidAccountNonce",
        "InvalidShortString",
        "StringTooLong",
    )
    assert own_errors, f"{name} declares no errors"
    for error in own_errors:
        assert error.startswith(name) or error.startswith(foreign), error
    for event in (e for e in abi if e["type"] == "event"):
        for arg in event["inputs"]:
            if arg["name"] in ("patient", "provider"):
                assert arg["indexed"], f"{name}.{event['name']}: {arg['name']} not indexed"


def test_deployment_file_errors_name_the_field() -> None:
    good = {
        "format": 1,
        "chainId": 31337,
        "contracts": {n: {"address": "0x" + "11" * 20, "abiHash": "0x00"} for n in CONTRACT_NAMES},
        "deployBlock": 1,
        "abiHash": deployment_abi_hash(),
        "deployer": "0x" + "22" * 20,
        "roles": {"registrar": "0x" + "22" * 20, "anchorer": "0x" + "33" * 20},
    }
    assert Deployment.from_json(good).chain_id == 31337
    missing = {k: v for k, v in good.items() if k != "deployBlock"}
    with pytest.raises(InputError) as exc:
        Deployment.from_json(missing)
    assert exc.value.field == "deployBlock"
    bad = json.loads(json.dumps(good))
    bad["contracts"]["ConsentLedger"]["address"] = "0x1234"
    with pytest.raises(InputError) as exc:
        Deployment.from_json(bad)
    assert exc.value.field == "contracts.ConsentLedger.address"
    with pytest.raises(InputError) as exc:
        Deployment.from_json(good | {"format": 2})
    assert exc.value.field == "format"
