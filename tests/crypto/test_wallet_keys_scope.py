"""Per-(patient, scope) delegating keys (docs/service.md "Keys")."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak

from kizuna.crypto import pre
from kizuna.crypto.wallet_keys import (
    KeyDerivationDomain,
    derive_scope_delegating_key,
    derive_wallet_keys_with_private_key,
)
from kizuna.errors import FragmentError, InputError
from kizuna.types import ScopeId

DOMAIN = KeyDerivationDomain(chain_id=31337, verifying_contract="0x" + "12" * 20)


def _keys(label: str):  # type: ignore[no-untyped-def]
    return derive_wallet_keys_with_private_key(keccak(text=label), domain=DOMAIN)


def test_scope_keys_are_deterministic_and_distinct_per_scope_and_patient() -> None:
    a, a_again, b = _keys("patient a"), _keys("patient a"), _keys("patient b")
    s1, s2 = ScopeId(b"\x01" * 32), ScopeId(b"\x02" * 32)
    assert a.scope_delegating_key(s1).public_key == a_again.scope_delegating_key(s1).public_key
    assert a.scope_delegating_key(s1).public_key != a.scope_delegating_key(s2).public_key
    assert a.scope_delegating_key(s1).public_key != b.scope_delegating_key(s1).public_key
    assert a.scope_delegating_key(s1).public_key != a.public_key


def test_kfrags_of_one_scope_do_not_open_another_scopes_capsule() -> None:
    patient, provider = _keys("patient"), _keys("provider")
    s1, s2 = ScopeId(b"\x01" * 32), ScopeId(b"\x02" * 32)
    k1, k2 = patient.scope_delegating_key(s1), patient.scope_delegating_key(s2)
    capsule2, wrapped2 = pre.encrypt(k2.public_key, b"k" * 32)
    kfrags1 = pre.generate_kfrags(k1, provider.public_key, patient.signer(), threshold=1,
                                  shares=1)
    # A kfrag of scope 1 claims scope 1's delegating key: the cfrag does not verify (or open)
    # scope 2's capsule.
    from kizuna.access.grant import placeholder_verified_grant

    grant = placeholder_verified_grant(patient=patient.account, grantee=provider.account,
                                       grantee_key=provider.public_key,
                                       record_id=b"\x00" * 32, scope_id=s1,
                                       expires_at=2**40)  # type: ignore[arg-type]
    cfrag = pre.reencrypt(capsule2, kfrags1[0], grant=grant)
    with pytest.raises(FragmentError):
        pre.verify_cfrags([cfrag.to_bytes()], capsule=capsule2,
                          verifying_key=patient.verifying_key, delegating_key=k2.public_key,
                          receiving_key=provider.public_key)
    with pytest.raises(FragmentError):
        pre.decrypt_reencrypted(provider.decrypting_key, k2.public_key, capsule2, [cfrag],
                                wrapped2, threshold=1)


def test_scope_id_must_be_32_bytes() -> None:
    with pytest.raises(InputError, match="scope_id"):
        derive_scope_delegating_key(_keys("p").decrypting_key, ScopeId(b"short"))
