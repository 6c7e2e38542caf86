"""Signer recovery (kizuna.signatures): the one rule, and every caller keeps to it.

The rule: 65 bytes, v in {27, 28} or {0, 1}, 0 < r < n, 0 < s <= n/2 (EIP-2, as the contracts'
ECDSA.recover); a signature from which no key recovers is an InputError, never a crash.
"""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address

from kizuna.chain.signers import LocalKeySigner, recover_typed_data_signer
from kizuna.crypto import pre
from kizuna.crypto import wallet_keys as wk
from kizuna.errors import AccessDenied, InputError, KeyDerivationError, SignerError
from kizuna.receipts.request import ReadRequest, WrongSigner, proxy_domain, recover_signer
from kizuna.signatures import (
    SECP256K1_N,
    SignerCheck,
    UnrecoverableSignature,
    recover_address,
    recover_signable,
    signable_digest,
)
from kizuna.types import RecordId
from kizuna.wire.care import InboxKey, inbox_key_typed_data

KEY = "0x" + "4b" * 32
ACCOUNT = Account.from_key(KEY).address
OTHER = Account.from_key("0x" + "4c" * 32).address
DOMAIN = proxy_domain(chain_id=31337, access_log=to_checksum_address("0x" + "11" * 20))
LEDGER = wk.KeyDerivationDomain(chain_id=31337,
                                verifying_contract=to_checksum_address(
                                    "0x5FbDB2315678afecb367f032d93F642f64180aa3"))


def _twin(signature: bytes) -> bytes:
    """The malleated twin (r, n - s, v flipped): a valid ECDSA signature of the same signer."""
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    flipped = 55 - v if v in (27, 28) else v ^ 1
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([flipped])


def _unrecoverable() -> bytes:
    """A well-formed low-s signature whose r is no curve point's x: no key recovers."""
    for x in range(1, 100):
        candidate = x.to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x1b"
        try:
            recover_address(bytes(32), candidate)
        except UnrecoverableSignature:
            return candidate
    raise AssertionError("every small x is on the curve?")


def _request() -> tuple[ReadRequest, bytes]:
    request = ReadRequest(provider=ACCOUNT, patient=OTHER, record_id=RecordId(os.urandom(32)),
                          request_id=os.urandom(32), issued_at=1_700_000_000)
    return request, request.sign(KEY, DOMAIN)


def _reason(signature: bytes) -> str:
    request, _ = _request()
    with pytest.raises(InputError) as raised:
        recover_address(request.digest(DOMAIN), signature)
    assert raised.value.field == "signature"
    return raised.value.reason


def test_good_signature_either_v_encoding() -> None:
    request, signature = _request()
    digest = request.digest(DOMAIN)
    assert recover_address(digest, signature) == ACCOUNT
    assert recover_address(digest, signature[:64] + bytes([signature[64] - 27])) == ACCOUNT


def test_malleated_twin_is_refused() -> None:
    request, signature = _request()
    twin = _twin(signature)
    # The twin is a real signature by the same key (eth-account, the former rule, accepts it)...
    assert Account._recover_hash(request.digest(DOMAIN), signature=twin) == ACCOUNT
    # ... and the one rule refuses it.
    assert "high-s" in _reason(twin)


@pytest.mark.parametrize(("signature", "words"), [
    (bytes(64) + b"\x1b", "r out of range"),
    (b"\x01" * 32 + bytes(32) + b"\x1b", "s out of range"),
    ((SECP256K1_N).to_bytes(32, "big") + b"\x01" * 32 + b"\x1b", "r out of range"),
    (b"\x01" * 64 + b"\x02", "v must be"),
    (b"\x01" * 64 + b"\x1d", "v must be"),
    (b"\x01" * 64 + b"\x25", "v must be"),
    (b"\x01" * 64, "65 bytes"),
    (b"\x01" * 66, "65 bytes"),
    (b"", "65 bytes"),
])
def test_malformed_signatures_name_the_reason(signature: bytes, words: str) -> None:
    assert words in _reason(signature)


def test_not_bytes_is_an_input_error() -> None:
    with pytest.raises(InputError, match="must be bytes"):
        recover_address(bytes(32), "0x" + "01" * 65)  # type: ignore[arg-type]


def test_no_key_recovers_is_an_input_error_not_a_crash() -> None:
    with pytest.raises(UnrecoverableSignature) as raised:
        recover_address(bytes(32), _unrecoverable())
    assert isinstance(raised.value, InputError) and raised.value.field == "signature"


def test_signer_check_cached_key_path_keeps_the_rule() -> None:
    check = SignerCheck()
    address = bytes.fromhex(ACCOUNT[2:])
    other = bytes.fromhex(OTHER[2:])
    for _ in range(3):  # the first recovers, the next ones verify against the kept key
        request, signature = _request()
        assert check.signer(request.digest(DOMAIN), signature, address) == address
    request, signature = _request()
    assert check.signer(request.digest(DOMAIN), signature, other) == address
    assert check.signer(os.urandom(32), signature, address) != address
    with pytest.raises(InputError, match="high-s"):
        check.signer(request.digest(DOMAIN), _twin(signature), address)


# -- every former caller ---------------------------------------------------------------------


def test_chain_signers_recovery() -> None:
    request, _ = _request()
    typed = request.typed_data(DOMAIN)
    assert signable_digest(typed.signable()) == request.digest(DOMAIN)
    signature = LocalKeySigner(KEY).sign_typed_data(typed)
    assert recover_typed_data_signer(typed, signature) == ACCOUNT
    assert recover_typed_data_signer(typed, "0x" + signature.hex()) == ACCOUNT
    for bad in (_twin(signature), bytes(64) + b"\x1b", _unrecoverable(),
                signature[:64] + b"\x05"):
        with pytest.raises(SignerError, match="malformed signature"):
            recover_typed_data_signer(typed, bad)
    with pytest.raises(InputError, match="65 bytes"):
        recover_typed_data_signer(typed, signature[:64])


def test_read_request_recovery() -> None:
    request, signature = _request()
    assert recover_signer(request, signature, DOMAIN) == ACCOUNT
    with pytest.raises(InputError, match="high-s"):
        recover_signer(request, _twin(signature), DOMAIN)
    with pytest.raises(InputError, match="65 bytes"):
        recover_signer(request, signature + b"\x00", DOMAIN)
    with pytest.raises(WrongSigner):  # an AccessDenied, as before
        recover_signer(request, _unrecoverable(), DOMAIN)


def test_wallet_keys_normalise_the_twin_then_recover() -> None:
    """Key derivation keeps its documented rule: a wallet's high-s encoding of the same
    signature gives the same keys (normalised to low-s *before* the one recovery)."""
    signature = wk.sign_key_derivation(KEY, domain=LEDGER)
    keys = wk.derive_wallet_keys(signature=signature, account=ACCOUNT, domain=LEDGER)
    twin = wk.derive_wallet_keys(signature=_twin(signature), account=ACCOUNT, domain=LEDGER)
    assert keys.public_key == twin.public_key
    with pytest.raises(KeyDerivationError, match="does not recover to any account"):
        wk.derive_wallet_keys(signature=_unrecoverable(), account=ACCOUNT, domain=LEDGER)
    with pytest.raises(KeyDerivationError, match="is by"):
        wk.derive_wallet_keys(signature=signature, account=OTHER, domain=LEDGER)


def test_inbox_key_statement_recovery() -> None:
    public_key = pre.UmbralSecretKey.random().public_key
    statement = inbox_key_typed_data(DOMAIN, patient=ACCOUNT, public_key=public_key.to_bytes())
    signature = LocalKeySigner(KEY).sign_typed_data(statement)
    assert recover_signable(statement.signable(), signature) == ACCOUNT
    InboxKey(patient=ACCOUNT, public_key=public_key, signature=signature,
             statement=statement).verify()
    for bad in (_twin(signature), _unrecoverable(), bytes(65)):
        with pytest.raises(AccessDenied, match="no valid signature"):
            InboxKey(patient=ACCOUNT, public_key=public_key, signature=bad,
                     statement=statement).verify()
