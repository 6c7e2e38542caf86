"""Secret keys never print, log, pickle, copy or hash."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

from kizuna.crypto import pre
from kizuna.crypto.scopes import ScopeKey
from kizuna.crypto.secret import Secret
from kizuna.crypto.wallet_keys import KeyDerivationDomain, derive_wallet_keys_with_private_key
from kizuna.storage.envelope import DataKey

DOMAIN = KeyDerivationDomain(
    chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3"
)


def _secrets() -> list[tuple[Secret, bytes]]:
    sk = pre.UmbralSecretKey.random()
    wallet = derive_wallet_keys_with_private_key("0x" + "42" * 32, domain=DOMAIN)
    data_key = DataKey.random()
    scope_key = ScopeKey(b"\x07" * 32)
    return [
        (sk, sk.to_secret_bytes()),
        (pre.UmbralSigner(sk), sk.to_secret_bytes()),
        (data_key, data_key.reveal()),
        (scope_key, scope_key.reveal()),
        (wallet, wallet.decrypting_key.to_secret_bytes()),
        (wallet.signing_key, wallet.signing_key.to_secret_bytes()),
    ]


@pytest.mark.parametrize(("secret", "raw"), _secrets(), ids=lambda v: type(v).__name__)
def test_secret_never_shows(secret: Secret, raw: bytes, caplog: pytest.LogCaptureFixture) -> None:
    name = type(secret).__name__
    shown_as = [repr(secret), str(secret), f"{secret}", f"{secret!r:>10}", "{}".format(secret)]  # noqa: UP032
    for shown in shown_as:
        assert shown.startswith(f"{name}(") and shown.endswith(")")
        assert raw.hex() not in shown and raw.hex()[:8] not in shown
    with caplog.at_level(logging.INFO):
        logging.getLogger("kizuna.test").info("key is %s / %r", secret, secret)
    assert raw.hex()[:8] not in caplog.text
    assert not hasattr(secret, "__dict__"), "slots only: vars() cannot dump the secret"


@pytest.mark.parametrize(("secret", "raw"), _secrets(), ids=lambda v: type(v).__name__)
def test_secret_refuses_pickle_copy_and_hash(secret: Secret, raw: bytes) -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="secret"):
            pickle.dumps(secret, protocol=protocol)
    with pytest.raises(TypeError):
        copy.copy(secret)
    with pytest.raises(TypeError):
        copy.deepcopy(secret)
    with pytest.raises(TypeError, match="unhashable"):
        hash(secret)
    with pytest.raises(TypeError):
        {secret}  # noqa: B018


def test_umbral_secret_key_repr_names_its_public_key() -> None:
    sk = pre.UmbralSecretKey.random()
    assert repr(sk) == f"UmbralSecretKey(pk={sk.public_key.hex()[:16]}...)"


def test_secret_bytes_compare_in_constant_time_and_check_size() -> None:
    assert DataKey(b"\x01" * 32) == DataKey(b"\x01" * 32)
    assert DataKey(b"\x01" * 32) != DataKey(b"\x02" * 32)
    assert DataKey(b"\x01" * 32) != ScopeKey(b"\x01" * 32)
    with pytest.raises(ValueError, match="32 bytes"):
        DataKey(b"short")
    with pytest.raises(TypeError):
        DataKey("not bytes")  # type: ignore[arg-type]
