"""``kizuna demo`` against the session's real anvil: the story it prints, and — checked on the
chain itself, not in its output — that the provider it revoked is refused afterwards."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from kizuna.chain.artifacts import deployment_abi_hash
from kizuna.chain.connection import connect, web3_for
from kizuna.chain.deploy import Deployment, deploy
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.chain.models import CareEventKind
from kizuna.chain.signers import LocalKeySigner
from kizuna.cli.demo import _Names, _refusal, demo
from kizuna.errors import ChainError, ContractReverted
from kizuna.types import Address, Commitment, ScopeId

pytestmark = pytest.mark.anvil


def _address(out: str, label: str) -> Address:
    return to_checksum_address(_fact(out, label))


def _fact(out: str, label: str) -> str:
    found = re.search(rf"^    {re.escape(label)}\s+(0x[0-9a-fA-F]+)", out, re.MULTILINE)
    assert found, f"no {label!r} line in:\n{out}"
    return found.group(1)


def test_kizuna_demo_shows_grant_then_refusal(anvil: LocalNode) -> None:
    result = CliRunner().invoke(demo, ["--rpc-url", anvil.rpc_url])
    assert result.exit_code == 0, result.output
    out = result.output
    revoke_step = out.index("The patient revokes")
    assert "hasAccess              True" in out[:revoke_step]
    assert "hasAccess              False" in out[revoke_step:]
    assert "refused: ConsentLedgerCareEventNotAllowed(patient=patient" in out[revoke_step:]
    assert "hasAccess (imaging)    True" in out  # the relayed, signed grant
    log = out[out.index("The audit log"):]
    for event in ("ProviderAdded", "RecordRegistered", "AccessGranted", "CareEventLogged",
                  "AccessRevoked"):
        assert re.search(rf"block +\d+  {event} ", log), event
    # What only the demo knows, shown beside what the chain holds: the blinded scope's label,
    # the role's name, the care event's kind.
    assert "('Observation:laboratory')" in log and "('ImagingStudy')" in log
    assert "role=REGISTRAR_ROLE" in log and "kind=VISIT_REPORTED" in log


def test_demo_provider_is_refused_on_chain_after_the_revoke(anvil: LocalNode) -> None:
    """Read back from the node after the demo: no access, and the provider's care event on the
    revoked scope reverts with the ledger's error."""
    result = CliRunner().invoke(demo, ["--rpc-url", anvil.rpc_url])
    assert result.exit_code == 0, result.output
    out = result.output
    scope = ScopeId(bytes.fromhex(_fact(out, "scope (blinded)")[2:]))
    registrar, patient, provider, _ = (Account.from_key(k).address for k in dev_private_keys(4))
    deployment = Deployment(
        chain_id=31337, provider_registry=_address(out, "ProviderRegistry"),
        consent_ledger=_address(out, "ConsentLedger"), access_log=_address(out, "AccessLog"),
        study_registry=_address(out, "StudyRegistry"), deploy_block=0,
        abi_hash=deployment_abi_hash(), deployer=registrar, registrar=registrar,
        anchorer=registrar)
    chain = connect(web3_for(anvil.rpc_url), deployment)  # checks the code at each address
    assert chain.ledger.has_access(patient, provider, scope) is False
    call = chain.ledger.log_care_event_call(patient, CareEventKind.VISIT_REPORTED,
                                            Commitment(keccak(b"again")), provider=provider,
                                            scope_id=scope)
    with pytest.raises(ContractReverted) as refused:
        chain.sender.simulate(call, sender=provider)
    assert refused.value.name == "ConsentLedgerCareEventNotAllowed"


def test_demo_fails_when_the_provider_is_not_refused(anvil: LocalNode) -> None:
    """The demo's refusal check against a grant still live: the command would fail (a
    ``ChainError``), never print a refusal it did not get."""
    keys = dev_private_keys(3)
    registrar, patient, provider = (LocalKeySigner(k) for k in keys)
    w3 = web3_for(anvil.rpc_url)
    chain = connect(w3, deploy(w3, Account.from_key(keys[0]), directory=None))
    chain.registry.add_provider(provider.address, bytes.fromhex("02" + "79be667e" * 8),
                                keccak(b"licence"), signer=registrar)
    scope = ScopeId(keccak(b"scope"))
    chain.ledger.grant(provider.address, scope, chain.head().timestamp + 3600, signer=patient)
    with pytest.raises(ChainError, match="would accept the provider's care event"):
        _refusal(chain, _Names(), patient=patient, provider=provider, scope=scope,
                 report=Commitment(keccak(b"report")))
