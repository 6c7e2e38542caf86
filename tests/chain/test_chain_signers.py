"""Signers and keystores: keys never shown, clear keystore errors, the external-wallet flow."""

from __future__ import annotations

import copy
import json
import os
import pickle
import stat
from pathlib import Path

import pytest
from chainenv import Env, scope
from eth_account import Account

from kizuna.chain.eip712 import grant_typed_data, ledger_domain
from kizuna.chain.keystore import (
    KeystoreCorrupted,
    KeystoreNotFound,
    WrongPassphrase,
    create_keystore,
    import_key,
    keystore_address,
    unlock,
)
from kizuna.chain.signers import ExternalWalletSigner, LocalKeySigner, recover_typed_data_signer
from kizuna.chain.transactions import TransactionReverted
from kizuna.errors import (
    ConflictError,
    ContractReverted,
    InputError,
    KeystoreError,
    NotFoundError,
    SignerError,
)

FAST = 2**10
"""A cheap scrypt cost for tests (the default is 2**18)."""
KEY = "0x" + "4c" * 32
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "patient.json"
    import_key(path, KEY, PASSPHRASE, scrypt_n=FAST)
    return path


def test_keystore_round_trip_and_file_mode(keyfile: Path) -> None:
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    document = json.loads(keyfile.read_text())
    assert document["version"] == 3 and document["crypto"]["kdf"] == "scrypt"
    assert KEY[2:] not in keyfile.read_text()
    signer = unlock(keyfile, PASSPHRASE)
    assert signer.address == Account.from_key(KEY).address == keystore_address(keyfile)
    assert signer.path == str(keyfile)


def test_new_keystore_and_no_accidental_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    address = create_keystore(path, PASSPHRASE, scrypt_n=FAST)
    assert unlock(path, PASSPHRASE).address == address
    with pytest.raises(ConflictError, match="exists already"):
        create_keystore(path, PASSPHRASE, scrypt_n=FAST)
    replaced = create_keystore(path, PASSPHRASE, scrypt_n=FAST, overwrite=True)
    assert replaced != address
    assert [p.name for p in tmp_path.iterdir()] == ["new.json"]  # no temp files left


def test_wrong_passphrase(keyfile: Path) -> None:
    with pytest.raises(WrongPassphrase) as info:
        unlock(keyfile, "not the passphrase")
    assert isinstance(info.value, KeystoreError)
    assert str(keyfile) in str(info.value) and "wrong passphrase" in str(info.value)
    assert "not the passphrase" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeystoreNotFound, match="no keystore file at") as info:
        unlock(tmp_path / "absent.json", PASSPHRASE)
    assert isinstance(info.value, NotFoundError) and isinstance(info.value, KeystoreError)


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda text: text[: len(text) // 2], "not JSON"),
    (lambda text: "[1, 2, 3]", "not a JSON object"),
    (lambda text: json.dumps({"version": 3}), "not a version 3 keystore"),
    (lambda text: json.dumps({**json.loads(text), "crypto": {
        k: v for k, v in json.loads(text)["crypto"].items() if k != "mac"}}), "missing crypto.mac"),
    (lambda text: json.dumps({**json.loads(text), "crypto": {
        **json.loads(text)["crypto"], "kdf": "argon9"}}), "corrupted"),
    (lambda text: json.dumps({**json.loads(text), "address": "ab" * 20}),
     "does not match the declared address"),
])
def test_corrupted_file(keyfile: Path, damage: object, reason: str) -> None:
    keyfile.write_text(damage(keyfile.read_text()))  # type: ignore[operator]
    with pytest.raises(KeystoreCorrupted, match=reason) as info:
        unlock(keyfile, PASSPHRASE)
    assert str(keyfile) in str(info.value)


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="passphrase"):
        create_keystore(tmp_path / "k.json", "", scrypt_n=FAST)


def test_keys_are_never_shown_pickled_or_copied(keyfile: Path) -> None:
    for signer in (LocalKeySigner(KEY), unlock(keyfile, PASSPHRASE)):
        shown = repr(signer) + str(signer) + f"{signer}"
        assert signer.address in shown
        assert KEY[2:] not in shown.lower() and "4c4c4c" not in shown.lower()
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(signer)
        with pytest.raises(TypeError, match="cannot be copied"):
            copy.deepcopy(signer)
        with pytest.raises(TypeError, match="cannot be copied"):
            copy.copy(signer)


def test_a_bad_private_key_is_refused_without_echo() -> None:
    with pytest.raises(SignerError) as info:
        LocalKeySigner("0x1234")
    assert "1234" not in str(info.value)


def test_keystore_signer_sends_transactions(tester_env: Env, tmp_path: Path) -> None:
    path = tmp_path / "patient.json"
    address = create_keystore(path, PASSPHRASE, scrypt_n=FAST)
    tester_env.fund(address)
    signer = unlock(path, PASSPHRASE)
    provider = tester_env.new_signer(funded=False)
    tester_env.chain.ledger.grant(provider.address, scope("lab"), tester_env.now() + 60,
                                  signer=signer)
    assert tester_env.chain.ledger.has_access(address, provider.address, scope("lab"))


# --- external wallet (MetaMask) ------------------------------------------------------------


def test_wallet_transaction_request_is_metamask_shaped(tester_env: Env) -> None:
    wallet_key = tester_env.new_signer()
    wallet = ExternalWalletSigner(address=wallet_key.address.lower(),  # type: ignore[arg-type]
                                  chain_id=tester_env.chain.chain_id)
    assert wallet.address == wallet_key.address  # checksummed
    provider = tester_env.new_signer(funded=False)
    ledger = tester_env.chain.ledger
    call = ledger.grant_call(provider.address, scope("lab"), tester_env.now() + 600)
    request = ledger.wallet_request(call, wallet)
    assert set(request) == {"from", "to", "data", "value", "gas", "maxFeePerGas",
                            "maxPriorityFeePerGas", "chainId"}
    assert all(isinstance(v, str) and v.startswith("0x") for v in request.values())
    assert request["from"] == wallet.address and request["to"] == ledger.address
    assert request["data"] == "0x" + call.data.hex() and request["value"] == "0x0"
    assert int(request["chainId"], 16) == tester_env.chain.chain_id
    # The "wallet" signs exactly these params (plus its own nonce) and broadcasts them.
    tx = {"to": request["to"], "data": request["data"], "value": int(request["value"], 16),
          "gas": int(request["gas"], 16), "maxFeePerGas": int(request["maxFeePerGas"], 16),
          "maxPriorityFeePerGas": int(request["maxPriorityFeePerGas"], 16),
          "chainId": int(request["chainId"], 16),
          "nonce": tester_env.w3.eth.get_transaction_count(wallet.address)}
    tx_hash = tester_env.w3.eth.send_raw_transaction(wallet_key.sign_transaction(tx))
    receipt = ledger.wallet_receipt(call, wallet, "0x" + bytes(tx_hash).hex())
    assert receipt.succeeded
    assert ledger.has_access(wallet.address, provider.address, scope("lab"))
    # A hash of some other transaction is not accepted as this call's.
    other = tester_env.chain.sender.transact(
        ledger.grant_call(provider.address, scope("x"), tester_env.now() + 600), wallet_key)
    with pytest.raises(InputError, match="is not the prepared"):
        ledger.wallet_receipt(ledger.revoke_call(provider.address, scope("x")),
                              ExternalWalletSigner(provider.address, wallet.chain_id),
                              other.tx_hash)
    # Same wallet, same contract, other calldata: refused too.
    with pytest.raises(InputError, match="is not the prepared revoke call"):
        ledger.wallet_receipt(ledger.revoke_call(provider.address, scope("x")), wallet,
                              other.tx_hash)
    # The wallet's transaction of the prepared call reverted: reported decoded.
    failing = ledger.revoke_call(provider.address, scope("never"))
    sent = tester_env.chain.sender.broadcast(failing, wallet_key, gas=100_000)
    with pytest.raises(TransactionReverted, match="ConsentLedgerNoGrant"):
        ledger.wallet_receipt(failing, wallet, sent)


def test_wallet_request_of_a_reverting_call_is_refused_decoded(tester_env: Env) -> None:
    wallet = ExternalWalletSigner(tester_env.new_signer().address, tester_env.chain.chain_id)
    call = tester_env.chain.ledger.revoke_call(wallet.address, scope("none"))
    with pytest.raises(ContractReverted, match="ConsentLedgerNoGrant"):
        tester_env.chain.ledger.wallet_request(call, wallet)


def test_wallet_typed_data_and_signature_check() -> None:
    patient = LocalKeySigner.generate()
    other = LocalKeySigner.generate()
    domain = ledger_domain(chain_id=5, ledger="0x" + "11" * 20)  # type: ignore[arg-type]
    typed = grant_typed_data(domain, patient=patient.address, provider=other.address,
                             scope_id=scope("lab"), expires_at=10**10, nonce=0,
                             deadline=10**10)
    wallet = ExternalWalletSigner(patient.address, chain_id=5)
    address, text = wallet.typed_data_request(typed)
    document = json.loads(text)
    assert address == patient.address
    assert document["primaryType"] == "Grant"
    assert [f["name"] for f in document["types"]["EIP712Domain"]] == [
        "name", "version", "chainId", "verifyingContract"]
    assert document["message"]["expiresAt"] == str(10**10)  # numbers as decimal strings
    signature = patient.sign_typed_data(typed)
    assert wallet.accept_signature(typed, "0x" + signature.hex()) == signature
    assert recover_typed_data_signer(typed, signature) == patient.address
    with pytest.raises(SignerError, match="not to the wallet"):
        wallet.accept_signature(typed, other.sign_typed_data(typed))
    with pytest.raises(InputError, match="65 bytes"):
        wallet.accept_signature(typed, "0x1234")
    with pytest.raises(InputError, match="chainId"):
        ExternalWalletSigner(patient.address, chain_id=1).typed_data_request(typed)
    with pytest.raises(InputError, match="txHash"):
        wallet.accept_transaction_hash("0xabc")
    assert wallet.accept_transaction_hash("0x" + "ab" * 32) == bytes.fromhex("ab" * 32)
    with pytest.raises(InputError, match="address"):
        ExternalWalletSigner("not an address", chain_id=1)  # type: ignore[arg-type]


def test_file_permissions_of_the_keys_directory_are_not_widened(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    create_keystore(private / "k.json", PASSPHRASE, scrypt_n=FAST)
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
