"""Wallet-derived keys: determinism, the committed vectors, every malformed signature."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from kizuna.crypto import wallet_keys as wk
from kizuna.crypto.scopes import blind_scope
from kizuna.errors import InputError, KeyDerivationError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "wallet_keys.json"
LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = wk.KeyDerivationDomain(chain_id=31337, verifying_contract=LEDGER)
KEY = "0x" + "5a" * 32
ACCOUNT = Account.from_key(KEY).address


def _load() -> dict:  # type: ignore[type-arg]
    return json.loads(VECTORS.read_text())


def test_committed_vectors_are_what_the_code_derives() -> None:
    generator = Path(__file__).with_name("wallet_vectors.py")
    spec = importlib.util.spec_from_file_location("kizuna_wallet_vectors", generator)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert VECTORS.read_text() == module.render(), "re-run tests/crypto/wallet_vectors.py"


@pytest.mark.parametrize("vector", _load()["vectors"], ids=lambda v: v["label"])
def test_vector(vector: dict) -> None:  # type: ignore[type-arg]
    domain_json = vector["typed_data"]["domain"]
    domain = wk.KeyDerivationDomain(
        chain_id=domain_json["chainId"], verifying_contract=domain_json["verifyingContract"]
    )
    signature = wk.sign_key_derivation(vector["private_key"], domain=domain)
    assert "0x" + signature.hex() == vector["signature"]
    keys = wk.derive_wallet_keys(
        signature=bytes.fromhex(vector["signature"][2:]), account=vector["account"], domain=domain
    )
    assert keys.public_key.hex() == vector["umbral_public_key"]
    assert keys.verifying_key.hex() == vector["umbral_verifying_key"]
    for label, scope_id in vector["scope_ids"].items():
        assert "0x" + blind_scope(keys.scope_key, label).hex() == scope_id
        sid = bytes.fromhex(scope_id[2:])
        assert keys.scope_delegating_key(sid).public_key.hex() \
            == vector["scope_delegating_keys"][label]
        assert keys.scope_delegating_key(sid, 0).public_key.hex() \
            == vector["scope_delegating_keys"][label]  # epoch 0 is the key of before epochs
    for epoch, by_label in vector["scope_delegating_keys_by_epoch"].items():
        for label, public in by_label.items():
            sid = bytes.fromhex(vector["scope_ids"][label][2:])
            assert keys.scope_delegating_key(sid, int(epoch)).public_key.hex() == public
    digest = wk.key_derivation_digest(account=vector["account"], domain=domain)
    assert "0x" + digest.hex() == vector["digest"]


def test_signatures_and_keys_are_deterministic() -> None:
    assert wk.sign_key_derivation(KEY, domain=DOMAIN) == wk.sign_key_derivation(KEY, domain=DOMAIN)
    a = wk.derive_wallet_keys_with_private_key(KEY, domain=DOMAIN)
    b = wk.derive_wallet_keys_with_private_key(KEY, domain=DOMAIN)
    assert a.public_key == b.public_key and a.verifying_key == b.verifying_key
    assert a.scope_key == b.scope_key
    assert a.public_key != a.verifying_key  # separate keys for decrypting and signing
    assert a.account == ACCOUNT


def test_keys_depend_on_chain_and_contract() -> None:
    base = wk.derive_wallet_keys_with_private_key(KEY, domain=DOMAIN).public_key
    other_chain = wk.KeyDerivationDomain(chain_id=1, verifying_contract=LEDGER)
    other_contract = wk.KeyDerivationDomain(
        chain_id=31337, verifying_contract="0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
    )
    for domain in (other_chain, other_contract):
        assert wk.derive_wallet_keys_with_private_key(KEY, domain=domain).public_key != base


def test_equivalent_signature_encodings_give_the_same_keys() -> None:
    signature = wk.sign_key_derivation(KEY, domain=DOMAIN)
    base = wk.derive_wallet_keys(signature=signature, account=ACCOUNT, domain=DOMAIN).public_key
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    high_s = r + (wk.SECP256K1_ORDER - s).to_bytes(32, "big") + bytes([27 + ((v - 27) ^ 1)])
    v01 = signature[:64] + bytes([v - 27])
    for variant in (high_s, v01, bytearray(signature)):
        keys = wk.derive_wallet_keys(signature=variant, account=ACCOUNT.lower(), domain=DOMAIN)
        assert keys.public_key == base


def test_signature_by_another_wallet_or_domain_is_refused() -> None:
    other = "0x" + "77" * 32
    by_other = wk.sign_key_derivation(other, domain=DOMAIN)
    with pytest.raises(KeyDerivationError, match=f"not by {ACCOUNT}"):
        wk.derive_wallet_keys(signature=by_other, account=ACCOUNT, domain=DOMAIN)
    other_chain = wk.KeyDerivationDomain(chain_id=5, verifying_contract=LEDGER)
    on_other_chain = wk.sign_key_derivation(KEY, domain=other_chain)
    with pytest.raises(KeyDerivationError):
        wk.derive_wallet_keys(signature=on_other_chain, account=ACCOUNT, domain=DOMAIN)
    plain = Account.sign_message(encode_defunct(text="hi"), KEY).signature
    with pytest.raises(KeyDerivationError):
        wk.derive_wallet_keys(signature=bytes(plain), account=ACCOUNT, domain=DOMAIN)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (b"", "65 bytes"),
        (bytes(64), "65 bytes"),
        (bytes(32) + b"\x01" * 32 + b"\x1b", "out of range"),
        (b"\x01" * 64 + b"\x05", "v must be"),
        ("0x" + "00" * 65, "must be bytes"),
    ],
)
def test_malformed_signatures(signature: bytes, reason: str) -> None:
    with pytest.raises(KeyDerivationError, match=reason):
        wk.derive_wallet_keys(signature=signature, account=ACCOUNT, domain=DOMAIN)


def test_bad_domain_and_account() -> None:
    with pytest.raises(InputError) as caught:
        wk.KeyDerivationDomain(chain_id=0, verifying_contract=LEDGER)
    assert caught.value.field == "chain_id"
    with pytest.raises(InputError) as caught:
        wk.KeyDerivationDomain(chain_id=1, verifying_contract="0x1234")  # type: ignore[arg-type]
    assert caught.value.field == "verifying_contract"
    with pytest.raises(InputError) as caught:
        wk.key_derivation_typed_data(account="alice", domain=DOMAIN)
    assert caught.value.field == "account"


def test_typed_data_is_the_documented_message() -> None:
    typed = wk.key_derivation_typed_data(account=ACCOUNT.lower(), domain=DOMAIN)
    assert typed["primaryType"] == "KeyDerivation"
    assert typed["domain"] == {
        "name": "Kizuna",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": LEDGER,
    }
    assert typed["message"] == {"purpose": wk.PURPOSE, "account": ACCOUNT}
    assert [f["name"] for f in typed["types"]["KeyDerivation"]] == ["purpose", "account"]


def test_every_epoch_has_its_own_scope_key_and_epochs_are_uint64() -> None:
    keys = wk.derive_wallet_keys_with_private_key(KEY, domain=DOMAIN)
    sid = b"\x07" * 32
    publics = {keys.scope_delegating_key(sid, e).public_key for e in (0, 1, 2, 2**64 - 1)}
    assert len(publics) == 4
    for bad in (-1, 2**64, True, 1.0, "1"):
        with pytest.raises(InputError, match="epoch"):
            keys.scope_delegating_key(sid, bad)  # type: ignore[arg-type]
