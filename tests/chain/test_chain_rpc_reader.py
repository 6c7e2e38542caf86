"""``ChainReader`` (kizuna/chain/rpc.py): the web3-free view a read of one's own record uses.
On anvil, against the web3 ``Chain`` of the same deployment: the deployment check refuses what
``Chain.verify`` refuses, with the same error (one rule: ``check_on_node``), and the commitment a
record was registered with is found the same way over both."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from chainenv import Env, scope
from eth_utils.crypto import keccak

from kizuna.chain.connection import connect
from kizuna.chain.rpc import ChainReader
from kizuna.client.chainview import registered_commitment
from kizuna.errors import DeploymentError, NotFoundError, WrongChain
from kizuna.types import Commitment, RecordId

pytestmark = pytest.mark.anvil


def _saved(env: Env, tmp_path: Path, **changes: object) -> Path:
    directory = tmp_path / f"d{len(list(tmp_path.iterdir()))}"
    return dataclasses.replace(env.deployment, **changes).save(directory)  # type: ignore[arg-type]


def _url(env: Env) -> str:
    return str(env.w3.provider.endpoint_uri)  # type: ignore[attr-defined]


def test_reader_checks_the_deployment_by_the_same_rule_as_web3(anvil_env: Env,
                                                               tmp_path: Path) -> None:
    env = anvil_env
    reader = ChainReader.connect(_url(env), _saved(env, tmp_path))
    try:
        assert reader.chain_id == env.chain.chain_id
        assert reader.deployment == env.deployment
    finally:
        reader.close()
    with pytest.raises(WrongChain):
        ChainReader.connect(_url(env), _saved(env, tmp_path, chain_id=env.chain.chain_id + 1))
    # the ledger's address holding the registry's code, and an address holding none: refused
    # by the reader with the error web3's Chain.verify gives for the same deployment
    for wrong in (env.deployment.provider_registry, "0x" + "00" * 19 + "01"):
        path = _saved(env, tmp_path, consent_ledger=wrong)
        with pytest.raises(DeploymentError) as lean:
            ChainReader.connect(_url(env), path)
        with pytest.raises(DeploymentError) as full:
            connect(_url(env), path)
        assert str(lean.value) == str(full.value)


def test_reader_finds_the_commitment_web3_finds(anvil_env: Env, tmp_path: Path) -> None:
    env = anvil_env
    patient = env.new_signer()
    record_id = RecordId(bytes(keccak(text=f"reader {patient.address}")))
    commitment = Commitment(scope("reader commitment"))
    receipt = env.chain.ledger.register_record(record_id, commitment, scope("notes"),
                                               signer=patient)
    reader = ChainReader.connect(_url(env), _saved(env, tmp_path))
    try:
        for source in (reader, env.chain):
            assert registered_commitment(source, patient=patient.address,
                                         record_id=record_id) == commitment
            # the block hint (the service's word) finds it in one block; a wrong one scans
            for hint in (receipt.block_number, receipt.block_number - 1):
                assert registered_commitment(source, patient=patient.address,
                                             record_id=record_id, block=hint) == commitment
            with pytest.raises(NotFoundError):  # another patient's id is not theirs
                registered_commitment(source, patient=env.new_signer().address,
                                      record_id=record_id)
    finally:
        reader.close()
