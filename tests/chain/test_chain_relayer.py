"""The relayer: gasless signed actions, refused (decoded) when they would revert."""

from __future__ import annotations

from dataclasses import replace

import pytest
from chainenv import Env, scope

from kizuna.chain.eip712 import SignedAction, ledger_domain
from kizuna.chain.relayer import Relayer, RelayRefused
from kizuna.errors import ContractReverted, InputError
from kizuna.types import Commitment, RecordId


def test_relayed_actions_take_effect_and_the_patient_pays_nothing(env: Env) -> None:
    patient = env.new_signer(funded=False)
    provider, relayer_key = env.new_signer(funded=False), env.new_signer()
    ledger, relayer = env.chain.ledger, Relayer(env.chain, relayer_key)
    deadline, expires = env.now() + 600, env.now() + 3600

    typed = ledger.grant_typed_data(patient=patient.address, provider=provider.address,
                                    scope_id=scope("lab"), expires_at=expires, deadline=deadline)
    receipt = relayer.relay(SignedAction(typed, patient.sign_typed_data(typed)))
    assert receipt.sender == relayer_key.address
    assert ledger.has_access(patient.address, provider.address, scope("lab"))
    assert [e.name for e in ledger.events(receipt)] == ["AccessGranted"]

    batch = ledger.grant_batch_typed_data(patient=patient.address, provider=provider.address,
                                          scope_ids=[scope("a"), scope("b")],
                                          expires_at=expires, deadline=deadline)
    relayer.relay(SignedAction(batch, patient.sign_typed_data(batch)))
    assert ledger.has_access(patient.address, provider.address, scope("b"))

    revoke = ledger.revoke_typed_data(patient=patient.address, provider=provider.address,
                                      scope_id=scope("lab"), deadline=deadline)
    relayer.relay(SignedAction(revoke, patient.sign_typed_data(revoke)))
    assert not ledger.has_access(patient.address, provider.address, scope("lab"))

    first, second = RecordId(scope("record-1")), RecordId(scope("record-2"))
    for record, supersedes in ((first, None), (second, first)):
        typed_record = ledger.register_record_typed_data(
            patient=patient.address, record_id=record, commitment=Commitment(scope("c")),
            scope_id=scope("notes"), supersedes=supersedes, deadline=deadline)
        relayer.relay(SignedAction(typed_record, patient.sign_typed_data(typed_record)))
    status = ledger.record_of(first)
    assert status is not None and status.superseded and status.patient == patient.address
    assert ledger.nonce(patient.address) == 5
    assert env.w3.eth.get_balance(patient.address) == 0


def test_a_replayed_signature_is_refused_before_sending(env: Env) -> None:
    patient, provider = env.new_signer(funded=False), env.new_signer()
    relayer_key = env.new_signer()
    relayer = Relayer(env.chain, relayer_key)
    typed = env.chain.ledger.grant_typed_data(patient=patient.address, provider=provider.address,
                                              scope_id=scope("lab"), expires_at=env.now() + 99,
                                              deadline=env.now() + 99)
    action = SignedAction(typed, patient.sign_typed_data(typed))
    relayer.relay(action)
    sent = env.w3.eth.get_transaction_count(relayer_key.address)
    with pytest.raises(RelayRefused) as info:
        relayer.relay(action)
    # The nonce moved on: the signature now recovers to someone else.
    assert info.value.name == "ConsentLedgerInvalidSigner"
    assert info.value.error_args["patient"] == patient.address
    assert "refused to relay Grant" in str(info.value)
    assert env.w3.eth.get_transaction_count(relayer_key.address) == sent  # nothing spent


def test_signature_of_someone_else_or_for_another_ledger(env: Env) -> None:
    patient, mallory = env.new_signer(funded=False), env.new_signer()
    relayer_key = env.new_signer()
    relayer = Relayer(env.chain, relayer_key)
    typed = env.chain.ledger.grant_typed_data(patient=patient.address, provider=mallory.address,
                                              scope_id=scope("lab"), expires_at=env.now() + 99,
                                              deadline=env.now() + 99)
    with pytest.raises(RelayRefused) as info:
        relayer.check(SignedAction(typed, mallory.sign_typed_data(typed)))
    assert info.value.name == "ConsentLedgerInvalidSigner"
    assert info.value.error_args == {"signer": mallory.address, "patient": patient.address}
    elsewhere = replace(typed, domain=ledger_domain(chain_id=env.chain.chain_id + 1,
                                                    ledger=env.chain.ledger.address))
    with pytest.raises(InputError, match="another chain or contract"):
        relayer.check(SignedAction(elsewhere, patient.sign_typed_data(elsewhere)))


def test_an_action_the_ledger_refuses_is_reported_decoded(tester_env: Env) -> None:
    patient, relayer_key = tester_env.new_signer(funded=False), tester_env.new_signer()
    ledger = tester_env.chain.ledger
    typed = ledger.revoke_typed_data(patient=patient.address, provider=relayer_key.address,
                                     scope_id=scope("never"), deadline=tester_env.now() + 99)
    with pytest.raises(RelayRefused) as info:
        Relayer(tester_env.chain, relayer_key).relay(
            SignedAction(typed, patient.sign_typed_data(typed)))
    assert isinstance(info.value, ContractReverted)
    assert info.value.name == "ConsentLedgerNoGrant"
    assert info.value.error_args["scopeId"] == scope("never")
