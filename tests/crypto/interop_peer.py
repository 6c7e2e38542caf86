"""The Python side of the Node interop test (tests/node/wallet_keys.test.mjs).

Reads one JSON request on stdin, answers one JSON object on stdout, using only Kizuna's
wrappers (the code path the proxy and the CLI use):

* ``reencrypt``: verify key fragments made in JavaScript, re-encrypt the capsule with them (as a
  proxy, under a placeholder VerifiedGrant), and open the result as the grantee with the
  grantee's wallet-derived key -- answers the capsule fragments and the opened plaintext.
* ``delegate``: as a patient (wallet-derived key), encrypt a plaintext and make 2-of-3 key
  fragments for a grantee public key made in JavaScript.
* ``seal``: seal a plaintext into a Kizuna envelope (docs/envelope.md) to the wallet-derived key
  of a vector, so JavaScript can open it following only the documented layout.

Secrets in requests are the test-only private keys of tests/vectors/wallet_keys.json.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from kizuna.access.grant import placeholder_verified_grant
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.crypto.wallet_keys import KeyDerivationDomain, derive_wallet_keys_with_private_key
from kizuna.storage.envelope import encrypt_bytes
from kizuna.types import RecordId, ScopeId


def _keys(vector: dict[str, Any]) -> Any:
    domain = vector["typed_data"]["domain"]
    return derive_wallet_keys_with_private_key(
        vector["private_key"],
        domain=KeyDerivationDomain(
            chain_id=domain["chainId"], verifying_contract=domain["verifyingContract"]
        ),
    )


def reencrypt(request: dict[str, Any]) -> dict[str, Any]:
    patient_pk = pre.UmbralPublicKey.from_hex(request["delegating_key"])
    verifying_key = pre.UmbralPublicKey.from_hex(request["verifying_key"])
    grantee = _keys(request["grantee_vector"])
    capsule = pre.Capsule.from_bytes(bytes.fromhex(request["capsule"]))
    kfrags = pre.verify_kfrags(
        [bytes.fromhex(k) for k in request["kfrags"]],
        verifying_key=verifying_key,
        delegating_key=patient_pk,
        receiving_key=grantee.public_key,
    )
    grant = placeholder_verified_grant(
        patient=request["patient_account"],
        grantee=grantee.account,
        grantee_key=grantee.public_key,
        record_id=RecordId(bytes(32)),
        scope_id=ScopeId(bytes(32)),
        expires_at=int(time.time()) + 60,
    )
    cfrags = [pre.reencrypt(capsule, kfrag, grant=grant) for kfrag in kfrags]
    opened = pre.decrypt_reencrypted(
        grantee.decrypting_key,
        patient_pk,
        capsule,
        cfrags,
        bytes.fromhex(request["ciphertext"]),
        threshold=request["threshold"],
    )
    return {"cfrags": [c.to_bytes().hex() for c in cfrags], "plaintext": opened.hex()}


def delegate(request: dict[str, Any]) -> dict[str, Any]:
    patient = _keys(request["patient_vector"])
    grantee_pk = pre.UmbralPublicKey.from_hex(request["receiving_key"])
    capsule, ciphertext = pre.encrypt(patient.public_key, bytes.fromhex(request["plaintext"]))
    kfrags = pre.generate_kfrags(
        patient.decrypting_key, grantee_pk, patient.signer(), threshold=2, shares=3
    )
    return {
        "delegating_key": patient.public_key.hex(),
        "verifying_key": patient.verifying_key.hex(),
        "capsule": capsule.to_bytes().hex(),
        "ciphertext": ciphertext.hex(),
        "kfrags": [k.to_bytes().hex() for k in kfrags],
    }


def seal(request: dict[str, Any]) -> dict[str, Any]:
    owner = _keys(request["owner_vector"])
    sealed = encrypt_bytes(
        bytes.fromhex(request["plaintext"]),
        owner_key=owner.public_key,
        record_id=RecordId(bytes.fromhex(request["record_id"])),
        content_type=request["content_type"],
        segment_size=request["segment_size"],
    )
    return {"envelope": bytes(sealed).hex(), "commitment": commitment_of(sealed).hex()}


def main() -> None:
    request = json.load(sys.stdin)
    operations = {"reencrypt": reencrypt, "delegate": delegate, "seal": seal}
    answer = operations[request["op"]](request)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
