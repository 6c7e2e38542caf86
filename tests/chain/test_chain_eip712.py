"""EIP-712: the shared vectors, the builders against the contract's own constants, validation."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from chainenv import Env, scope
from eip712_vectors import VECTORS_PATH, render
from eth_account import Account
from eth_utils.crypto import keccak

from kizuna.chain.eip712 import (
    SIGNED_ACTIONS,
    STUDY_ACTIONS,
    SignedAction,
    TypedData,
    grant_batch_typed_data,
    grant_typed_data,
    ledger_domain,
    register_record_typed_data,
    revoke_typed_data,
)
from kizuna.chain.signers import LocalKeySigner, recover_typed_data_signer
from kizuna.errors import InputError

SPEC = json.loads(VECTORS_PATH.read_text())


def test_committed_vectors_are_what_the_builders_make() -> None:
    assert VECTORS_PATH.read_text() == render(), "re-run python tests/chain/eip712_vectors.py"


@pytest.mark.parametrize("vector", SPEC["vectors"], ids=[v["name"] for v in SPEC["vectors"]])
def test_vector(vector: dict[str, object]) -> None:
    typed = TypedData.from_json(vector["typedData"])  # type: ignore[arg-type]
    assert typed.to_json() == vector["typedData"]
    assert typed.type_string() == vector["typeString"]
    assert "0x" + typed.type_hash().hex() == vector["typeHash"]
    assert "0x" + typed.struct_hash().hex() == vector["structHash"]
    assert "0x" + typed.digest().hex() == vector["digest"]
    assert "0x" + typed.domain.separator().hex() == SPEC["domainSeparator"]
    signature = bytes.fromhex(str(vector["signature"])[2:])
    assert recover_typed_data_signer(typed, signature) == vector["signer"]
    # eth-account's own encoder of the very JSON a wallet receives agrees on the digest.
    signed = Account.sign_typed_data(str(vector["privateKey"]), full_message=vector["typedData"])
    assert bytes(signed.signature) == signature
    # Changing one field changes the signer.
    message = dict(typed.message)
    message["deadline"] = str(int(message["deadline"]) - 1)
    assert recover_typed_data_signer(replace(typed, message=message), signature) != vector["signer"]


def test_type_hashes_and_domain_equal_the_contract(tester_env: Env) -> None:
    ledger = tester_env.chain.ledger
    studies = tester_env.chain.studies
    constants = {"Grant": "GRANT_TYPEHASH", "GrantBatch": "GRANT_BATCH_TYPEHASH",
                 "Revoke": "REVOKE_TYPEHASH", "RegisterRecord": "REGISTER_RECORD_TYPEHASH",
                 "RegisterBatch": "REGISTER_BATCH_TYPEHASH",
                 "StudyConsent": "STUDY_CONSENT_TYPEHASH",
                 "StudyWithdrawal": "STUDY_WITHDRAWAL_TYPEHASH"}
    assert set(constants) == set(SIGNED_ACTIONS)
    for primary, fields in SIGNED_ACTIONS.items():
        study = primary in STUDY_ACTIONS  # the study registry's, in its own domain
        typed = TypedData(domain=studies.domain if study else tester_env.chain.ledger_domain,
                          primary_type=primary, types={primary: fields})
        contract = studies if study else ledger
        assert typed.type_hash() == bytes(contract._view(constants[primary])), primary
    assert tester_env.chain.ledger_domain.separator() == ledger.domain_separator()
    assert studies.domain.separator() == bytes(studies._view("DOMAIN_SEPARATOR"))
    # ERC-5267: the contract describes its own domain; it is the one Python builds.
    fields, name, version, chain_id, verifying, _, _ = ledger._view("eip712Domain")
    domain = tester_env.chain.ledger_domain
    assert (name, version, chain_id, verifying) == (
        domain.name, domain.version, domain.chain_id, domain.verifying_contract)


def test_builders_validate_their_inputs() -> None:
    domain = ledger_domain(chain_id=1, ledger="0x" + "11" * 20)  # type: ignore[arg-type]
    patient = LocalKeySigner.generate().address
    good = {"patient": patient, "provider": patient, "scope_id": scope("a"),
            "expires_at": 5, "nonce": 0, "deadline": 9}
    with pytest.raises(InputError, match="scopeId: must be exactly 32 bytes"):
        grant_typed_data(domain, **{**good, "scope_id": b"short"})  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"expiresAt: .* does not fit in uint64"):
        grant_typed_data(domain, **{**good, "expires_at": 2**64})  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"provider: .* is not an Ethereum address"):
        grant_typed_data(domain, **{**good, "provider": "0x12"})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="nonce"):
        revoke_typed_data(domain, patient=patient, provider=patient, scope_id=scope("a"),
                          nonce=-1, deadline=1)
    with pytest.raises(InputError, match="at least one scope"):
        grant_batch_typed_data(domain, patient=patient, provider=patient, scope_ids=[],
                               expires_at=5, nonce=0, deadline=9)
    record = register_record_typed_data(domain, patient=patient, record_id=scope("r"),
                                        commitment=scope("c"), scope_id=scope("s"), nonce=0,
                                        deadline=9)
    assert record.message["supersedes"] == "0x" + "00" * 32
    with pytest.raises(InputError, match="signature"):
        SignedAction(record, b"\x00" * 64)
    with pytest.raises(InputError, match="primaryType"):
        SignedAction(replace(record, primary_type="Mail"), b"\x00" * 65)


def test_grant_batch_hashes_the_array_as_eip712_says() -> None:
    domain = ledger_domain(chain_id=1, ledger="0x" + "11" * 20)  # type: ignore[arg-type]
    patient = LocalKeySigner.generate().address
    scopes = [scope("a"), scope("b")]
    typed = grant_batch_typed_data(domain, patient=patient, provider=patient, scope_ids=scopes,
                                   expires_at=5, nonce=0, deadline=9)
    from eth_abi.abi import encode

    expected = keccak(encode(
        ["bytes32", "address", "address", "bytes32", "uint64", "uint256", "uint256"],
        [typed.type_hash(), patient, patient, keccak(b"".join(scopes)), 5, 0, 9]))
    assert typed.struct_hash() == expected
