"""The access rule rebuilt from events equals the ledger's own answer at each block — including
revokeAll's same-block rule and expiries — and the Consent states follow it.

Real eth-tester chain; two transactions are put in one block by pausing auto-mining."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from audit_story import Party, scope
from web3 import EthereumTesterProvider, Web3

from kizuna.chain.connection import Chain, connect
from kizuna.chain.deploy import deploy
from kizuna.chain.models import ContractCall
from kizuna.chain.signers import LocalKeySigner
from kizuna.services import audit, fhir_export
from kizuna.storage.fhir.validate import validate


@dataclass
class Rules:
    w3: Web3
    chain: Chain
    patient: Party
    provider: Party
    granted_x: int
    same_block: int
    regranted_y: int
    expired_z_at: int
    after_expiry: int


def _send_in_one_block(w3: Web3, sends: list[tuple[LocalKeySigner, ContractCall]]) -> int:
    """Send each call from its signer (one transaction per sender: eth-tester checks nonces
    against the mined state) and mine them into a single block, in that order."""
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    tester.disable_auto_mine_transactions()
    try:
        hashes = []
        for signer, call in sends:
            raw = signer.sign_transaction({
                "to": call.to, "data": call.data, "value": 0, "gas": 300_000,
                "nonce": w3.eth.get_transaction_count(signer.address),
                "chainId": w3.eth.chain_id,
                "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9})
            hashes.append(w3.eth.send_raw_transaction(raw))
        tester.mine_blocks(1)
    finally:
        tester.enable_auto_mine_transactions()
    blocks = {w3.eth.get_transaction_receipt(h)["blockNumber"] for h in hashes}
    assert len(blocks) == 1
    for h in hashes:
        assert w3.eth.get_transaction_receipt(h)["status"] == 1
    return blocks.pop()


@pytest.fixture(scope="module")
def rules() -> Rules:
    tester = EthereumTesterProvider()
    w3 = Web3(tester)
    keys = tester.ethereum_tester.backend.account_keys
    admin_key = keys[0].to_hex() if hasattr(keys[0], "to_hex") else keys[0]
    from eth_account import Account

    chain = connect(w3, deploy(w3, Account.from_key(admin_key), directory=None))
    admin = LocalKeySigner(admin_key)
    patient, provider, guardian = Party.new(), Party.new(), Party.new()
    for who in (patient, provider, guardian):
        chain.sender.transact(ContractCall(to=who.address, data=b"", value=10**18), admin,
                              gas=21_000)
    ledger = chain.ledger
    now = int(w3.eth.get_block("latest")["timestamp"])
    far = now + 86_400
    granted_x = ledger.grant(provider.address, scope("X"), far,
                             signer=patient.signer).block_number
    ledger.appoint_guardian(guardian.address, far, signer=patient.signer)
    # revokeAll (patient) and a grant of Y (the guardian, for the patient) in the very same
    # block, the grant after the revokeAll: revokeAll wins
    same_block = _send_in_one_block(w3, [
        (patient.signer, ledger.revoke_all_call(provider.address)),
        (guardian.signer, ledger.grant_call(provider.address, scope("Y"), far,
                                            patient=patient.address, sender=guardian.address)),
    ])
    regranted_y = ledger.grant(provider.address, scope("Y"), far,
                               signer=patient.signer).block_number
    expires = int(w3.eth.get_block("latest")["timestamp"]) + 100
    ledger.grant(provider.address, scope("Z"), expires, signer=patient.signer)
    tester.ethereum_tester.time_travel(expires + 5)
    after = w3.eth.block_number
    return Rules(w3, chain, patient, provider, granted_x, same_block, regranted_y, expires,
                 after)


def test_event_replay_equals_the_ledger_at_every_block(rules: Rules) -> None:
    history = audit.ChainHistory.from_chain(rules.chain)
    p, q = rules.patient.address, rules.provider.address
    compared = 0
    for block in range(rules.granted_x, rules.after_expiry + 1):
        for label in ("X", "Y", "Z"):
            replayed = history.access_at(p, q, scope(label), block)
            on_chain = rules.chain.ledger.has_access(p, q, scope(label), block=block)
            assert replayed.allowed == on_chain, (label, block, replayed.reason)
            compared += 1
    assert compared >= 12


def test_reasons_name_the_rule(rules: Rules) -> None:
    history = audit.ChainHistory.from_chain(rules.chain)
    p, q = rules.patient.address, rules.provider.address
    assert history.access_at(p, q, scope("X"), rules.granted_x).allowed
    ended = history.access_at(p, q, scope("X"), rules.same_block)
    assert not ended.allowed and f"revokeAll in block {rules.same_block}" in ended.reason
    dead = history.access_at(p, q, scope("Y"), rules.same_block)
    assert not dead.allowed and "revokeAll" in dead.reason
    assert history.access_at(p, q, scope("Y"), rules.regranted_y).allowed
    expired = history.access_at(p, q, scope("Z"), rules.after_expiry)
    assert not expired.allowed and "expired" in expired.reason
    never = history.access_at(p, q, scope("W"), rules.after_expiry)
    assert not never.allowed and "no grant" in never.reason


def test_consent_states(rules: Rules) -> None:
    history = audit.ChainHistory.from_chain(rules.chain)
    now = history.block_time(history.head_block)
    consents = fhir_export.consents(history, now=now)
    states = [(c["provision"]["code"][0]["coding"][0]["code"], c["status"],
               [i["type"]["text"] for i in c["identifier"]]) for c in consents]
    x, y, z = ("0x" + scope(label).hex() for label in ("X", "Y", "Z"))
    assert states == [
        (x, "inactive", ["grant", "revokeAll"]),
        (y, "rejected", ["grant", "revokeAll in the same block"]),
        (y, "active", ["grant"]),
        (z, "inactive", ["grant"]),
    ]
    assert "end" not in consents[2]["provision"]["period"] or \
        consents[2]["provision"]["period"]["end"] > consents[2]["provision"]["period"]["start"]
    validate(fhir_export.bundle(consents, chain_id=rules.chain.chain_id,
                                ledger=rules.chain.deployment.addresses["ConsentLedger"],
                                timestamp=now))


def test_provenance_of_a_registration_and_its_supersession(rules: Rules) -> None:
    import os

    from kizuna.types import Commitment, RecordId

    ledger = rules.chain.ledger
    old, new = RecordId(os.urandom(32)), RecordId(os.urandom(32))
    ledger.register_record(old, Commitment(bytes(32 * [1])), scope("X"),
                           signer=rules.patient.signer)
    ledger.supersede_record(old, new, Commitment(bytes(32 * [2])), scope("X"),
                            signer=rules.patient.signer)
    history = audit.ChainHistory.from_chain(rules.chain)
    cids = {bytes(old): "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}
    provenances = {p["target"][0]["identifier"]["value"]: p
                   for p in fhir_export.provenances(history, cids=cids)}
    created = provenances["0x" + old.hex()]
    updated = provenances["0x" + new.hex()]
    assert created["activity"]["coding"][0]["code"] == "CREATE"
    assert created["entity"] == [{"role": "source", "what": {
        "identifier": {"system": fhir_export.CID_SYSTEM, "value": cids[bytes(old)]},
        "display": "the record's encrypted envelope"}}]
    assert updated["activity"]["coding"][0]["code"] == "UPDATE"
    assert updated["entity"][0]["role"] == "revision"
    assert updated["entity"][0]["what"]["identifier"]["value"] == "0x" + old.hex()
    assert created["agent"][0]["who"]["identifier"]["value"] == rules.patient.address
    log = history.entries(patient=rules.patient.address)
    superseded = [e for e in log if e.kind is audit.EntryKind.RECORD_SUPERSEDED]
    assert [e.record_id for e in superseded] == [new]
    assert superseded[0].details["oldRecordId"] == "0x" + old.hex()
    validate(fhir_export.bundle(list(provenances.values()), chain_id=rules.chain.chain_id,
                                ledger=rules.chain.deployment.addresses["ConsentLedger"],
                                timestamp=history.block_time(history.head_block)))
