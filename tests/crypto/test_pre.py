"""Umbral through Kizuna's wrappers: delegation, thresholds, verification, the grant boundary."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable

import pytest

from kizuna.access.grant import VerifiedGrant
from kizuna.crypto import pre
from kizuna.errors import AccessDenied, CryptoError, FragmentError, InputError, IntegrityError

GrantFactory = Callable[..., VerifiedGrant]

DATA_KEY = os.urandom(32)


def _delegate(
    patient_sk: pre.UmbralSecretKey,
    signer: pre.UmbralSigner,
    grantee: pre.UmbralPublicKey,
    *,
    threshold: int,
    shares: int,
) -> tuple[pre.Capsule, bytes, tuple[pre.VerifiedKeyFrag, ...]]:
    capsule, ciphertext = pre.encrypt(patient_sk.public_key, DATA_KEY)
    kfrags = pre.generate_kfrags(patient_sk, grantee, signer, threshold=threshold, shares=shares)
    return capsule, ciphertext, kfrags


def test_owner_round_trip(
    patient_sk: pre.UmbralSecretKey, stranger_sk: pre.UmbralSecretKey
) -> None:
    capsule, ciphertext = pre.encrypt(patient_sk.public_key, DATA_KEY)
    assert pre.decrypt_original(patient_sk, capsule, ciphertext) == DATA_KEY
    with pytest.raises(IntegrityError, match="wrong secret key"):
        pre.decrypt_original(stranger_sk, capsule, ciphertext)
    tampered = bytearray(ciphertext)
    tampered[-1] ^= 1
    with pytest.raises(IntegrityError):
        pre.decrypt_original(patient_sk, capsule, bytes(tampered))


def test_two_of_three(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    make_grant: GrantFactory,
) -> None:
    capsule, ciphertext, kfrags = _delegate(
        patient_sk, patient_signer, provider_sk.public_key, threshold=2, shares=3
    )
    assert len(kfrags) == 3
    grant = make_grant(provider_sk.public_key)
    cfrags = [pre.reencrypt(capsule, k, grant=grant) for k in kfrags]
    for pair in itertools.combinations(cfrags, 2):
        opened = pre.decrypt_reencrypted(
            provider_sk, patient_sk.public_key, capsule, pair, ciphertext, threshold=2
        )
        assert opened == DATA_KEY
    assert (
        pre.decrypt_reencrypted(
            provider_sk, patient_sk.public_key, capsule, cfrags, ciphertext, threshold=2
        )
        == DATA_KEY
    )


def test_below_threshold_fails(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    make_grant: GrantFactory,
) -> None:
    capsule, ciphertext, kfrags = _delegate(
        patient_sk, patient_signer, provider_sk.public_key, threshold=2, shares=3
    )
    grant = make_grant(provider_sk.public_key)
    one = pre.reencrypt(capsule, kfrags[0], grant=grant)
    with pytest.raises(FragmentError, match="2 capsule fragments are needed, 1 given"):
        pre.decrypt_reencrypted(
            provider_sk, patient_sk.public_key, capsule, [one], ciphertext, threshold=2
        )
    # the same fragment twice is still one fragment
    with pytest.raises(FragmentError, match="repeated"):
        pre.decrypt_reencrypted(
            provider_sk, patient_sk.public_key, capsule, [one, one], ciphertext, threshold=2
        )
    # an unverified fragment is refused by type
    with pytest.raises(TypeError, match="VerifiedCapsuleFrag"):
        pre.decrypt_reencrypted(
            provider_sk,
            patient_sk.public_key,
            capsule,
            [one, pre.CapsuleFrag.from_bytes(one.to_bytes())],  # type: ignore[list-item]
            ciphertext,
            threshold=2,
        )
    # a caller that under-states the threshold still cannot open with one fragment
    with pytest.raises(FragmentError, match="do not open the capsule"):
        pre.decrypt_reencrypted(
            provider_sk, patient_sk.public_key, capsule, [one], ciphertext, threshold=1
        )


def test_one_of_one(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    make_grant: GrantFactory,
) -> None:
    capsule, ciphertext, (kfrag,) = _delegate(
        patient_sk, patient_signer, provider_sk.public_key, threshold=1, shares=1
    )
    cfrag = pre.reencrypt(capsule, kfrag, grant=make_grant(provider_sk.public_key))
    opened = pre.decrypt_reencrypted(
        provider_sk, patient_sk.public_key, capsule, [cfrag], ciphertext, threshold=1
    )
    assert opened == DATA_KEY


def test_grantee_with_the_wrong_key_fails(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    stranger_sk: pre.UmbralSecretKey,
    make_grant: GrantFactory,
) -> None:
    capsule, ciphertext, kfrags = _delegate(
        patient_sk, patient_signer, provider_sk.public_key, threshold=2, shares=3
    )
    grant = make_grant(provider_sk.public_key)
    cfrags = [pre.reencrypt(capsule, k, grant=grant) for k in kfrags[:2]]
    with pytest.raises(CryptoError):
        pre.decrypt_reencrypted(
            stranger_sk, patient_sk.public_key, capsule, cfrags, ciphertext, threshold=2
        )
    # the stranger cannot make the proxy work for them either
    with pytest.raises(AccessDenied, match="not made for the grantee"):
        pre.reencrypt(capsule, kfrags[0], grant=make_grant(stranger_sk.public_key))
    # nor pass the fragments' check against their own key
    with pytest.raises(FragmentError):
        pre.verify_cfrags(
            [c.to_bytes() for c in cfrags],
            capsule=capsule,
            verifying_key=patient_signer.verifying_key,
            delegating_key=patient_sk.public_key,
            receiving_key=stranger_sk.public_key,
        )


def test_reencrypt_accepts_only_a_verified_grant(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    make_grant: GrantFactory,
) -> None:
    capsule, _, kfrags = _delegate(
        patient_sk, patient_signer, provider_sk.public_key, threshold=1, shares=1
    )

    class LooksLikeAGrant:
        grantee = "0x2222222222222222222222222222222222222222"
        grantee_key = provider_sk.public_key
        expires_at = 2**40

    for fake in (None, {"grantee_key": provider_sk.public_key}, LooksLikeAGrant()):
        with pytest.raises(TypeError, match="VerifiedGrant"):
            pre.reencrypt(capsule, kfrags[0], grant=fake)  # type: ignore[arg-type]
    with pytest.raises(AccessDenied, match="expired"):
        pre.reencrypt(capsule, kfrags[0], grant=make_grant(provider_sk.public_key, expires_in=-1))
    unverified = pre.KeyFrag.from_bytes(kfrags[0].to_bytes())
    with pytest.raises(TypeError, match="VerifiedKeyFrag"):
        pre.reencrypt(capsule, unverified, grant=make_grant(provider_sk.public_key))  # type: ignore[arg-type]


def test_kfrag_verification(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    stranger_sk: pre.UmbralSecretKey,
) -> None:
    _, _, kfrags = _delegate(
        patient_sk, patient_signer, provider_sk.public_key, threshold=2, shares=3
    )
    wire = [k.to_bytes() for k in kfrags]
    good = {
        "verifying_key": patient_signer.verifying_key,
        "delegating_key": patient_sk.public_key,
        "receiving_key": provider_sk.public_key,
    }
    verified = pre.verify_kfrags(wire, **good)
    assert verified == kfrags
    assert all(v.receiving_key == provider_sk.public_key for v in verified)
    for wrong in ("verifying_key", "delegating_key", "receiving_key"):
        with pytest.raises(FragmentError, match="key fragment failed verification"):
            pre.verify_kfrags(wire, **{**good, wrong: stranger_sk.public_key})
    damaged = bytearray(wire[1])
    damaged[100] ^= 1
    with pytest.raises(CryptoError) as caught:
        pre.verify_kfrags([wire[0], bytes(damaged)], **good)
    if isinstance(caught.value, InputError):
        assert caught.value.field == "kfrags[1]"


def test_kfrag_altered_past_the_proxy_check_is_caught_by_the_grantee(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    make_grant: GrantFactory,
) -> None:
    """Umbral's kfrag check covers the proxy's part; the part signed for the receiver (the
    last 64 bytes) is checked by the grantee when verifying the cfrag."""
    capsule, _, kfrags = _delegate(
        patient_sk, patient_signer, provider_sk.public_key, threshold=1, shares=1
    )
    keys = {
        "verifying_key": patient_signer.verifying_key,
        "delegating_key": patient_sk.public_key,
        "receiving_key": provider_sk.public_key,
    }
    damaged = bytearray(kfrags[0].to_bytes())
    damaged[-10] ^= 1
    (passes_proxy_check,) = pre.verify_kfrags([bytes(damaged)], **keys)
    cfrag = pre.reencrypt(capsule, passes_proxy_check, grant=make_grant(provider_sk.public_key))
    with pytest.raises(FragmentError, match="capsule fragment failed verification"):
        pre.verify_cfrags([cfrag.to_bytes()], capsule=capsule, **keys)


def test_cfrag_verification(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    make_grant: GrantFactory,
) -> None:
    capsule, ciphertext, kfrags = _delegate(
        patient_sk, patient_signer, provider_sk.public_key, threshold=2, shares=3
    )
    grant = make_grant(provider_sk.public_key)
    wire = [pre.reencrypt(capsule, k, grant=grant).to_bytes() for k in kfrags]
    keys = {
        "verifying_key": patient_signer.verifying_key,
        "delegating_key": patient_sk.public_key,
        "receiving_key": provider_sk.public_key,
    }
    verified = pre.verify_cfrags(wire, capsule=capsule, **keys)
    assert (
        pre.decrypt_reencrypted(
            provider_sk, patient_sk.public_key, capsule, verified[1:], ciphertext, threshold=2
        )
        == DATA_KEY
    )
    other_capsule, _ = pre.encrypt(patient_sk.public_key, DATA_KEY)
    with pytest.raises(FragmentError, match="capsule fragment failed verification"):
        pre.verify_cfrags(wire, capsule=other_capsule, **keys)


def test_serialization_round_trips(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    make_grant: GrantFactory,
) -> None:
    pk = patient_sk.public_key
    raw = pk.to_bytes()
    assert len(raw) == pre.PUBLIC_KEY_SIZE == 33
    assert raw[0] in (2, 3)
    assert pre.UmbralPublicKey.from_bytes(raw) == pk
    assert pre.UmbralPublicKey.from_hex("0x" + pk.hex()) == pk
    assert hash(pre.UmbralPublicKey.from_bytes(raw)) == hash(pk)
    capsule, _, kfrags = _delegate(
        patient_sk, patient_signer, provider_sk.public_key, threshold=1, shares=1
    )
    assert pre.Capsule.from_bytes(capsule.to_bytes()) == capsule
    assert pre.KeyFrag.from_bytes(kfrags[0].to_bytes()).to_bytes() == kfrags[0].to_bytes()
    cfrag = pre.reencrypt(capsule, kfrags[0], grant=make_grant(provider_sk.public_key))
    assert pre.CapsuleFrag.from_bytes(cfrag.to_bytes()).to_bytes() == cfrag.to_bytes()
    secret = patient_sk.to_secret_bytes()
    assert pre.UmbralSecretKey.from_secret_bytes(secret).public_key == pk


@pytest.mark.parametrize(
    ("parse", "data", "field"),
    [
        (pre.UmbralPublicKey.from_bytes, b"\x02" + bytes(31), "public_key"),
        (pre.UmbralPublicKey.from_bytes, b"\x05" + bytes(32), "public_key"),
        (pre.UmbralPublicKey.from_hex, "zz", "public_key"),
        (pre.Capsule.from_bytes, b"nonsense", "capsule"),
        (pre.KeyFrag.from_bytes, b"nonsense", "kfrag"),
        (pre.CapsuleFrag.from_bytes, b"", "cfrag"),
        (pre.UmbralSecretKey.from_secret_bytes, bytes(32), "secret_key"),
        (pre.UmbralSecretKey.from_secret_bytes, b"\xff" * 32, "secret_key"),
    ],
)
def test_malformed_inputs_name_their_field(parse: object, data: object, field: str) -> None:
    with pytest.raises(pre.MalformedCryptoData) as caught:
        parse(data)  # type: ignore[operator]
    assert caught.value.field == field
    assert isinstance(caught.value, CryptoError)
    assert isinstance(caught.value, InputError)


@pytest.mark.parametrize(
    ("threshold", "shares", "field"),
    [
        (0, 3, "threshold"),
        (4, 3, "threshold"),
        (1, 0, "shares"),
        (1, 256, "shares"),
        (True, 2, "threshold"),
    ],
)
def test_bad_threshold_or_shares(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    threshold: int,
    shares: int,
    field: str,
) -> None:
    with pytest.raises(InputError) as caught:
        pre.generate_kfrags(
            patient_sk, provider_sk.public_key, patient_signer, threshold=threshold, shares=shares
        )
    assert caught.value.field == field


def test_verified_kfrag_cannot_be_repaired_to_another_grantee(
    patient_sk: pre.UmbralSecretKey,
    patient_signer: pre.UmbralSigner,
    provider_sk: pre.UmbralSecretKey,
    stranger_sk: pre.UmbralSecretKey,
) -> None:
    _, _, (kfrag,) = _delegate(
        patient_sk, patient_signer, provider_sk.public_key, threshold=1, shares=1
    )
    with pytest.raises(TypeError, match="comes from generate_kfrags"):
        pre.VerifiedKeyFrag(kfrag._kfrag, patient_sk.public_key, stranger_sk.public_key)
    with pytest.raises(TypeError, match="comes from generate_kfrags"):
        dataclasses.replace(kfrag, receiving_key=stranger_sk.public_key)
