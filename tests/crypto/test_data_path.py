"""The crypto half of a read, straight down: patient seals -> kfrags -> proxies re-encrypt under
a VerifiedGrant -> provider verifies cfrags, unwraps, decrypts and checks the commitment."""

from __future__ import annotations

import io
import os
import time

import pytest

from kizuna.access.grant import placeholder_verified_grant
from kizuna.crypto import pre
from kizuna.crypto.commitment import CommitmentHasher
from kizuna.crypto.scopes import blind_scope, scope_label
from kizuna.crypto.wallet_keys import KeyDerivationDomain, derive_wallet_keys_with_private_key
from kizuna.errors import CryptoError, FragmentError
from kizuna.storage.envelope import MAX_PREAMBLE_SIZE, EnvelopeReader, encrypt_stream, read_header
from kizuna.types import RecordId

DOMAIN = KeyDerivationDomain(
    chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3"
)
PATIENT = derive_wallet_keys_with_private_key("0x" + "a1" * 32, domain=DOMAIN)
PROVIDER = derive_wallet_keys_with_private_key("0x" + "b2" * 32, domain=DOMAIN)
OTHER_PROVIDER = derive_wallet_keys_with_private_key("0x" + "c3" * 32, domain=DOMAIN)


def test_patient_to_provider_through_two_of_three_proxies() -> None:
    record = RecordId(os.urandom(32))
    label = scope_label("Observation:laboratory")
    fhir = b'{"resourceType":"Observation","status":"final"}' * 5000

    # patient side: seal, commit, delegate
    hasher = CommitmentHasher()
    stored = b"".join(
        hasher.tap(
            encrypt_stream(
                io.BytesIO(fhir),
                owner_key=PATIENT.public_key,
                record_id=record,
                content_type="application/fhir+json",
                segment_size=4096,
            )
        )
    )
    commitment = hasher.commitment
    scope_id = blind_scope(PATIENT.scope_key, label)
    kfrag_wire = [
        k.to_bytes()
        for k in pre.generate_kfrags(
            PATIENT.decrypting_key, PROVIDER.public_key, PATIENT.signer(), threshold=2, shares=3
        )
    ]

    # each proxy: verify its kfrag, then (after the access check) re-encrypt the capsule
    capsule = read_header(stored[:MAX_PREAMBLE_SIZE]).capsule
    grant = placeholder_verified_grant(
        patient=PATIENT.account,
        grantee=PROVIDER.account,
        grantee_key=PROVIDER.public_key,
        record_id=record,
        scope_id=scope_id,
        expires_at=int(time.time()) + 600,
    )
    cfrag_wire = []
    for wire in kfrag_wire[1:]:  # proxy 0 is down: 2 of 3 answer
        (kfrag,) = pre.verify_kfrags(
            [wire],
            verifying_key=PATIENT.verifying_key,
            delegating_key=PATIENT.public_key,
            receiving_key=PROVIDER.public_key,
        )
        cfrag_wire.append(pre.reencrypt(capsule, kfrag, grant=grant).to_bytes())

    # provider side: verify cfrags, unwrap, decrypt, check the on-chain commitment
    reader = EnvelopeReader(iter([stored[i : i + 5000] for i in range(0, len(stored), 5000)]))
    cfrags = pre.verify_cfrags(
        cfrag_wire,
        capsule=reader.header.capsule,
        verifying_key=PATIENT.verifying_key,
        delegating_key=PATIENT.public_key,
        receiving_key=PROVIDER.public_key,
    )
    key = reader.header.unwrap_for_grantee(
        PROVIDER.decrypting_key,
        delegating_key=PATIENT.public_key,
        cfrags=cfrags,
        threshold=2,
    )
    assert b"".join(reader.decrypt(key, expected_commitment=commitment)) == fhir
    assert reader.header.record_id == record

    # one proxy alone is not enough; another provider cannot use these cfrags
    with pytest.raises(FragmentError):
        read_header(stored).unwrap_for_grantee(
            PROVIDER.decrypting_key,
            delegating_key=PATIENT.public_key,
            cfrags=cfrags[:1],
            threshold=2,
        )
    with pytest.raises(CryptoError):
        read_header(stored).unwrap_for_grantee(
            OTHER_PROVIDER.decrypting_key,
            delegating_key=PATIENT.public_key,
            cfrags=cfrags,
            threshold=2,
        )
