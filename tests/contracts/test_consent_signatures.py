"""ConsentLedger gasless actions: grantBySig, grantBatchBySig, revokeBySig, registerRecordBySig,
their EIP-712 domain and typehashes, nonces, and every way a signature must be refused."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak
from ledger_harness import Actors, Bench, b32, scope_ids
from web3.contract.contract import ContractFunction

from kizuna.chain.eip712 import (
    TypedData,
    grant_batch_typed_data,
    grant_typed_data,
    register_batch_typed_data,
    register_record_typed_data,
    revoke_typed_data,
)

LABS, MEDS = scope_ids("labs", "meds")
DAY = 86_400
RID = b32("record:1")
RID2 = b32("record:2")
COMMIT = b32("ciphertext:1")
ZERO = bytes(32)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# The struct strings exactly as the Solidity sources declare them (IConsentLedger NatSpec).
TYPE_STRINGS = {
    "GRANT_TYPEHASH": "Grant(address patient,address provider,bytes32 scopeId,uint64 expiresAt,"
                      "uint256 nonce,uint256 deadline)",
    "GRANT_BATCH_TYPEHASH": "GrantBatch(address patient,address provider,bytes32[] scopeIds,"
                            "uint64 expiresAt,uint256 nonce,uint256 deadline)",
    "REVOKE_TYPEHASH": "Revoke(address patient,address provider,bytes32 scopeId,uint256 nonce,"
                       "uint256 deadline)",
    "REGISTER_RECORD_TYPEHASH": "RegisterRecord(address patient,bytes32 recordId,"
                                "bytes32 commitment,bytes32 scopeId,bytes32 supersedes,"
                                "uint256 nonce,uint256 deadline)",
    "REGISTER_BATCH_TYPEHASH": "RegisterBatch(address patient,bytes32 root,uint32 count,"
                               "uint256 nonce,uint256 deadline)",
}


def _grant(bench: Bench, actors: Actors, *, nonce: int = 0, expires: int | None = None,
           deadline: int | None = None, **domain: object) -> tuple[TypedData, int, int]:
    expires = bench.now() + DAY if expires is None else expires
    deadline = bench.now() + 3600 if deadline is None else deadline
    typed = grant_typed_data(bench.domain(**domain), patient=actors.patient,  # type: ignore[arg-type]
                             provider=actors.provider, scope_id=LABS, expires_at=expires,
                             nonce=nonce, deadline=deadline)
    return typed, expires, deadline


def _as_verified(bench: Bench, typed: TypedData, *, nonce: int) -> TypedData:
    """The document the ledger rebuilds: same fields, its own domain, the current nonce."""
    message = dict(typed.message)
    message["nonce"] = str(nonce)
    return TypedData(domain=bench.domain(), primary_type=typed.primary_type, types=typed.types,
                     message=message)


@pytest.mark.parametrize("constant", sorted(TYPE_STRINGS))
def test_typehashes_matchTheDeclaredStructsAndThePythonBuilders(bench: Bench,
                                                                 constant: str) -> None:
    on_chain = bytes(getattr(bench.ledger.functions, constant)().call())
    assert on_chain == bytes(keccak(text=TYPE_STRINGS[constant]))
    builders = {
        "GRANT_TYPEHASH": lambda d: grant_typed_data(d, patient=bench.actors.patient,
                                                     provider=bench.actors.provider,
                                                     scope_id=LABS, expires_at=1, nonce=0,
                                                     deadline=1),
        "GRANT_BATCH_TYPEHASH": lambda d: grant_batch_typed_data(
            d, patient=bench.actors.patient, provider=bench.actors.provider, scope_ids=[LABS],
            expires_at=1, nonce=0, deadline=1),
        "REVOKE_TYPEHASH": lambda d: revoke_typed_data(
            d, patient=bench.actors.patient, provider=bench.actors.provider, scope_id=LABS,
            nonce=0, deadline=1),
        "REGISTER_RECORD_TYPEHASH": lambda d: register_record_typed_data(
            d, patient=bench.actors.patient, record_id=RID, commitment=COMMIT, scope_id=LABS,
            nonce=0, deadline=1),
        "REGISTER_BATCH_TYPEHASH": lambda d: register_batch_typed_data(
            d, patient=bench.actors.patient, root=COMMIT, count=1, nonce=0, deadline=1),
    }
    assert builders[constant](bench.domain()).type_hash() == on_chain


def test_domainSeparator_bindsNameVersionChainAndContract(bench: Bench) -> None:
    separator = bytes(bench.ledger.functions.DOMAIN_SEPARATOR().call())
    assert separator == bench.domain().separator()
    assert separator != bytes(bench.other_ledger.functions.DOMAIN_SEPARATOR().call())
    assert bytes(bench.other_ledger.functions.DOMAIN_SEPARATOR().call()) == (
        bench.domain(ledger=bench.other_ledger).separator())
    # ERC-5267 (OpenZeppelin EIP712): the same domain, field by field.
    fields, name, version, chain_id, contract, salt, extensions = (
        bench.ledger.functions.eip712Domain().call())
    assert (bytes(fields), name, version, chain_id, contract, bytes(salt), extensions) == (
        b"\x0f", "Kizuna ConsentLedger", "1", bench.chain_id, bench.ledger.address, ZERO, [])


def test_grantBySig_relayedByAnyoneGrantsAndConsumesTheNonce(bench: Bench,
                                                             actors: Actors) -> None:
    typed, expires, deadline = _grant(bench, actors)
    signature = bench.sign(typed, actors.patient)
    assert bench.nonce(actors.patient) == 0
    receipt = bench.tx(bench.ledger.functions.grantBySig(
        actors.patient, actors.provider, LABS, expires, deadline, signature), actors.stranger)
    assert bench.event_list(receipt) == [
        ("AccessGranted", {"patient": actors.patient, "provider": actors.provider,
                           "scopeId": LABS, "expiresAt": expires}),
    ]
    assert bench.ledger.functions.accessExpiry(actors.patient, actors.provider, LABS).call() == (
        expires)
    assert bench.nonce(actors.patient) == 1
    assert bench.nonce(actors.stranger) == 0  # the relayer's nonce is untouched


def test_grantBySig_revertsWhenReplayed(bench: Bench, actors: Actors) -> None:
    typed, expires, deadline = _grant(bench, actors)
    signature = bench.sign(typed, actors.patient)
    fn = bench.ledger.functions.grantBySig(actors.patient, actors.provider, LABS, expires,
                                           deadline, signature)
    bench.tx(fn, actors.stranger)
    # The ledger now checks the signature against nonce 1: it recovers some other address.
    recovered = bench.recover(_as_verified(bench, typed, nonce=1), signature)
    assert recovered != actors.patient
    for relayer in (actors.stranger, actors.provider, actors.patient):
        bench.reverts(fn, relayer, "ConsentLedgerInvalidSigner",
                      signer=recovered, patient=actors.patient)
    assert bench.nonce(actors.patient) == 1


def test_grantBySig_revertsWhenDeadlinePassed(bench: Bench, actors: Actors) -> None:
    now = bench.next_time()
    typed, expires, deadline = _grant(bench, actors, deadline=now - 1)
    signature = bench.sign(typed, actors.patient)
    bench.reverts(bench.ledger.functions.grantBySig(actors.patient, actors.provider, LABS,
                                                    expires, deadline, signature),
                  actors.stranger, "ConsentLedgerSignatureExpired",
                  deadline=deadline, currentTime=now)
    assert bench.nonce(actors.patient) == 0
    # A deadline equal to the block time is still accepted (expired only once passed).
    typed, expires, deadline = _grant(bench, actors, deadline=bench.next_time())
    bench.tx(bench.ledger.functions.grantBySig(actors.patient, actors.provider, LABS, expires,
                                               deadline, bench.sign(typed, actors.patient)),
             actors.stranger)


def test_grantBySig_revertsForAnotherChain(bench: Bench, actors: Actors) -> None:
    typed, expires, deadline = _grant(bench, actors, chain_id=bench.chain_id + 1)
    signature = bench.sign(typed, actors.patient)
    recovered = bench.recover(_as_verified(bench, typed, nonce=0), signature)
    bench.reverts(bench.ledger.functions.grantBySig(actors.patient, actors.provider, LABS,
                                                    expires, deadline, signature),
                  actors.stranger, "ConsentLedgerInvalidSigner",
                  signer=recovered, patient=actors.patient)


def test_grantBySig_revertsForAnotherContract(bench: Bench, actors: Actors) -> None:
    typed, expires, deadline = _grant(bench, actors, ledger=bench.other_ledger)
    signature = bench.sign(typed, actors.patient)
    recovered = bench.recover(_as_verified(bench, typed, nonce=0), signature)
    args = (actors.patient, actors.provider, LABS, expires, deadline, signature)
    bench.reverts(bench.ledger.functions.grantBySig(*args), actors.stranger,
                  "ConsentLedgerInvalidSigner", signer=recovered, patient=actors.patient)
    # The very same signature is good on the deployment it was made for.
    bench.tx(bench.other_ledger.functions.grantBySig(*args), actors.stranger)
    assert bench.other_ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()
    assert not bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()


@pytest.mark.parametrize("signer", ["stranger", "guardian", "provider"])
def test_grantBySig_revertsWhenSignedByAnyoneButThePatient(bench: Bench, actors: Actors,
                                                           signer: str) -> None:
    # Even a live guardian cannot sign for the patient: signed actions are the patient's own.
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, bench.now() + DAY),
             actors.patient)
    typed, expires, deadline = _grant(bench, actors)
    signature = bench.sign(typed, getattr(actors, signer))
    bench.reverts(bench.ledger.functions.grantBySig(actors.patient, actors.provider, LABS,
                                                    expires, deadline, signature),
                  actors.stranger, "ConsentLedgerInvalidSigner",
                  signer=getattr(actors, signer), patient=actors.patient)


def test_grantBySig_revertsWhenAFieldIsAltered(bench: Bench, actors: Actors) -> None:
    typed, expires, deadline = _grant(bench, actors)
    signature = bench.sign(typed, actors.patient)
    signed = {"patient": actors.patient, "provider": actors.provider, "scope_id": LABS,
              "expires_at": expires, "deadline": deadline}
    for field, value in (("expires_at", expires + 1), ("deadline", deadline + 1),
                         ("scope_id", MEDS), ("provider", actors.provider2),
                         ("patient", actors.patient2)):
        claimed = {**signed, field: value}
        # What the ledger rebuilds from the relayed fields, and whom the signature recovers to.
        rebuilt = grant_typed_data(bench.domain(), nonce=0, **claimed)  # type: ignore[arg-type]
        recovered = bench.recover(rebuilt, signature)
        assert recovered != claimed["patient"]
        bench.reverts(bench.ledger.functions.grantBySig(
            claimed["patient"], claimed["provider"], claimed["scope_id"], claimed["expires_at"],
            claimed["deadline"], signature), actors.stranger, "ConsentLedgerInvalidSigner",
            signer=recovered, patient=claimed["patient"])
    assert bench.nonce(actors.patient) == 0


def test_grantBySig_revertsForAFutureNonce(bench: Bench, actors: Actors) -> None:
    typed, expires, deadline = _grant(bench, actors, nonce=1)
    signature = bench.sign(typed, actors.patient)
    recovered = bench.recover(_as_verified(bench, typed, nonce=0), signature)
    bench.reverts(bench.ledger.functions.grantBySig(actors.patient, actors.provider, LABS,
                                                    expires, deadline, signature),
                  actors.stranger, "ConsentLedgerInvalidSigner",
                  signer=recovered, patient=actors.patient)


def test_grantBySig_revertsForMalformedSignatures(bench: Bench, actors: Actors) -> None:
    typed, expires, deadline = _grant(bench, actors)
    signature = bench.sign(typed, actors.patient)

    def relay(sig: bytes) -> ContractFunction:
        return bench.ledger.functions.grantBySig(actors.patient, actors.provider, LABS, expires,
                                                 deadline, sig)

    bench.reverts(relay(signature[:64]), actors.stranger, "ECDSAInvalidSignatureLength",
                  length=64)
    bench.reverts(relay(b""), actors.stranger, "ECDSAInvalidSignatureLength", length=0)
    # The malleable twin (s -> n - s, v flipped) is refused (OpenZeppelin ECDSA).
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    high_s = (SECP256K1_N - s).to_bytes(32, "big")
    bench.reverts(relay(r + high_s + bytes([55 - v])), actors.stranger,
                  "ECDSAInvalidSignatureS", s=high_s)
    bench.reverts(relay(bytes(65)), actors.stranger, "ECDSAInvalidSignature")
    bench.tx(relay(signature), actors.stranger)


def test_grantBySig_revertsWhenExpiryInPastEvenIfSigned(bench: Bench, actors: Actors) -> None:
    now = bench.next_time()
    typed, expires, deadline = _grant(bench, actors, expires=now - 10)
    bench.reverts(bench.ledger.functions.grantBySig(actors.patient, actors.provider, LABS,
                                                    expires, deadline,
                                                    bench.sign(typed, actors.patient)),
                  actors.stranger, "ConsentLedgerInvalidExpiry", expiresAt=expires,
                  currentTime=now)


def test_nonces_areSharedByEverySignedActionKind(bench: Bench, actors: Actors) -> None:
    deadline = bench.now() + 3600
    expires = bench.now() + DAY
    domain = bench.domain()
    grant = grant_typed_data(domain, patient=actors.patient, provider=actors.provider,
                             scope_id=LABS, expires_at=expires, nonce=0, deadline=deadline)
    bench.tx(bench.ledger.functions.grantBySig(actors.patient, actors.provider, LABS, expires,
                                               deadline, bench.sign(grant, actors.patient)),
             actors.stranger)
    # A revoke signed with nonce 0 (already used by the grant) is refused ...
    stale = revoke_typed_data(domain, patient=actors.patient, provider=actors.provider,
                              scope_id=LABS, nonce=0, deadline=deadline)
    stale_sig = bench.sign(stale, actors.patient)
    fresh_view = revoke_typed_data(domain, patient=actors.patient, provider=actors.provider,
                                   scope_id=LABS, nonce=1, deadline=deadline)
    bench.reverts(bench.ledger.functions.revokeBySig(actors.patient, actors.provider, LABS,
                                                     deadline, stale_sig),
                  actors.stranger, "ConsentLedgerInvalidSigner",
                  signer=bench.recover(fresh_view, stale_sig), patient=actors.patient)
    # ... and one signed with nonce 1 works.
    receipt = bench.tx(bench.ledger.functions.revokeBySig(
        actors.patient, actors.provider, LABS, deadline, bench.sign(fresh_view, actors.patient)),
        actors.stranger)
    assert bench.event_list(receipt) == [
        ("AccessRevoked", {"patient": actors.patient, "provider": actors.provider,
                           "scopeId": LABS}),
    ]
    assert bench.nonce(actors.patient) == 2
    assert not bench.ledger.functions.hasAccess(actors.patient, actors.provider, LABS).call()


def test_grantBatchBySig_grantsEveryScope(bench: Bench, actors: Actors) -> None:
    expires, deadline = bench.now() + DAY, bench.now() + 3600
    typed = grant_batch_typed_data(bench.domain(), patient=actors.patient,
                                   provider=actors.provider, scope_ids=[LABS, MEDS],
                                   expires_at=expires, nonce=0, deadline=deadline)
    signature = bench.sign(typed, actors.patient)
    fn = bench.ledger.functions.grantBatchBySig(actors.patient, actors.provider, [LABS, MEDS],
                                                expires, deadline, signature)
    receipt = bench.tx(fn, actors.stranger)
    assert bench.event_list(receipt) == [
        ("AccessGrantedBatch", {"patient": actors.patient, "provider": actors.provider,
                                "scopeIds": [LABS, MEDS], "expiresAt": expires}),
    ]
    assert bench.ledger.functions.hasAccess(actors.patient, actors.provider, MEDS).call()
    bench.reverts(fn, actors.stranger, "ConsentLedgerInvalidSigner",
                  signer=bench.recover(_as_verified(bench, typed, nonce=1), signature),
                  patient=actors.patient)


def test_grantBatchBySig_revertsWhenScopeListAltered(bench: Bench, actors: Actors) -> None:
    expires, deadline = bench.now() + DAY, bench.now() + 3600
    typed = grant_batch_typed_data(bench.domain(), patient=actors.patient,
                                   provider=actors.provider, scope_ids=[LABS, MEDS],
                                   expires_at=expires, nonce=0, deadline=deadline)
    signature = bench.sign(typed, actors.patient)
    for scopes in ([MEDS, LABS], [LABS], [LABS, MEDS, MEDS]):
        claimed = grant_batch_typed_data(bench.domain(), patient=actors.patient,
                                         provider=actors.provider, scope_ids=scopes,
                                         expires_at=expires, nonce=0, deadline=deadline)
        bench.reverts(bench.ledger.functions.grantBatchBySig(
            actors.patient, actors.provider, scopes, expires, deadline, signature),
            actors.stranger, "ConsentLedgerInvalidSigner",
            signer=bench.recover(claimed, signature), patient=actors.patient)


def test_grantBatchBySig_revertsWhenDeadlinePassedOrBatchEmpty(bench: Bench,
                                                               actors: Actors) -> None:
    now = bench.next_time()
    expires = now + DAY
    typed = grant_batch_typed_data(bench.domain(), patient=actors.patient,
                                   provider=actors.provider, scope_ids=[LABS],
                                   expires_at=expires, nonce=0, deadline=now - 1)
    bench.reverts(bench.ledger.functions.grantBatchBySig(
        actors.patient, actors.provider, [LABS], expires, now - 1,
        bench.sign(typed, actors.patient)), actors.stranger,
        "ConsentLedgerSignatureExpired", deadline=now - 1, currentTime=now)
    # An empty list signed by the patient (the builder refuses it, so sign the raw document).
    empty = TypedData(domain=typed.domain, primary_type="GrantBatch", types=typed.types,
                      message={**typed.message, "scopeIds": [], "deadline": str(now + 60)})
    bench.reverts(bench.ledger.functions.grantBatchBySig(
        actors.patient, actors.provider, [], expires, now + 60, bench.sign(empty, actors.patient)),
        actors.stranger, "ConsentLedgerEmptyBatch")


def test_revokeBySig_revertsWhenNoGrantOrExpiredOrWrongSigner(bench: Bench,
                                                              actors: Actors) -> None:
    now = bench.next_time()
    deadline = now + 60
    typed = revoke_typed_data(bench.domain(), patient=actors.patient, provider=actors.provider,
                              scope_id=LABS, nonce=0, deadline=deadline)
    bench.reverts(bench.ledger.functions.revokeBySig(
        actors.patient, actors.provider, LABS, deadline, bench.sign(typed, actors.patient)),
        actors.stranger, "ConsentLedgerNoGrant", patient=actors.patient,
        provider=actors.provider, scopeId=LABS)
    bench.reverts(bench.ledger.functions.revokeBySig(
        actors.patient, actors.provider, LABS, deadline, bench.sign(typed, actors.stranger)),
        actors.stranger, "ConsentLedgerInvalidSigner", signer=actors.stranger,
        patient=actors.patient)
    old = revoke_typed_data(bench.domain(), patient=actors.patient, provider=actors.provider,
                            scope_id=LABS, nonce=0, deadline=now - 1)
    bench.reverts(bench.ledger.functions.revokeBySig(
        actors.patient, actors.provider, LABS, now - 1, bench.sign(old, actors.patient)),
        actors.stranger, "ConsentLedgerSignatureExpired", deadline=now - 1, currentTime=now)


def test_registerRecordBySig_registersAndSupersedes(bench: Bench, actors: Actors) -> None:
    deadline = bench.now() + 3600
    first = register_record_typed_data(bench.domain(), patient=actors.patient, record_id=RID,
                                       commitment=COMMIT, scope_id=LABS, nonce=0,
                                       deadline=deadline)
    when = bench.next_time()
    receipt = bench.tx(bench.ledger.functions.registerRecordBySig(
        actors.patient, RID, COMMIT, LABS, ZERO, deadline, bench.sign(first, actors.patient)),
        actors.stranger)
    assert bench.event_list(receipt) == [
        ("RecordRegistered", {"patient": actors.patient, "recordId": RID, "commitment": COMMIT,
                              "scopeId": LABS}),
    ]
    assert bench.ledger.functions.recordOf(RID).call() == [actors.patient, when, False]
    second = register_record_typed_data(bench.domain(), patient=actors.patient, record_id=RID2,
                                        commitment=COMMIT, scope_id=MEDS, nonce=1,
                                        deadline=deadline, supersedes=RID)
    receipt = bench.tx(bench.ledger.functions.registerRecordBySig(
        actors.patient, RID2, COMMIT, MEDS, RID, deadline, bench.sign(second, actors.patient)),
        actors.stranger)
    assert [e.name for e in bench.events(receipt)] == ["RecordRegistered", "RecordSuperseded"]
    assert bench.events(receipt)[1].args == {"patient": actors.patient, "oldRecordId": RID,
                                             "newRecordId": RID2}
    assert bench.ledger.functions.recordOf(RID).call()[2] is True


def test_registerRecordBySig_revertsForAStrangerSigningForThePatient(bench: Bench,
                                                                     actors: Actors) -> None:
    deadline = bench.now() + 3600
    typed = register_record_typed_data(bench.domain(), patient=actors.patient, record_id=RID,
                                       commitment=COMMIT, scope_id=LABS, nonce=0,
                                       deadline=deadline)
    bench.reverts(bench.ledger.functions.registerRecordBySig(
        actors.patient, RID, COMMIT, LABS, ZERO, deadline, bench.sign(typed, actors.stranger)),
        actors.stranger, "ConsentLedgerInvalidSigner", signer=actors.stranger,
        patient=actors.patient)
    assert bench.ledger.functions.recordOf(RID).call()[1] == 0


def test_registerRecordBySig_revertsWhenExpiredOrIdTaken(bench: Bench, actors: Actors) -> None:
    now = bench.next_time()
    old = register_record_typed_data(bench.domain(), patient=actors.patient, record_id=RID,
                                     commitment=COMMIT, scope_id=LABS, nonce=0, deadline=now - 1)
    bench.reverts(bench.ledger.functions.registerRecordBySig(
        actors.patient, RID, COMMIT, LABS, ZERO, now - 1, bench.sign(old, actors.patient)),
        actors.stranger, "ConsentLedgerSignatureExpired", deadline=now - 1, currentTime=now)
    bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, LABS), actors.patient2)
    deadline = bench.now() + 3600
    taken = register_record_typed_data(bench.domain(), patient=actors.patient, record_id=RID,
                                       commitment=COMMIT, scope_id=LABS, nonce=0,
                                       deadline=deadline)
    bench.reverts(bench.ledger.functions.registerRecordBySig(
        actors.patient, RID, COMMIT, LABS, ZERO, deadline, bench.sign(taken, actors.patient)),
        actors.stranger, "ConsentLedgerRecordExists", recordId=RID)


def test_registerRecordBySig_supersedingSomeoneElsesRecord_leavesItLive(bench: Bench,
                                                                       actors: Actors) -> None:
    # Before #12 this reverted ConsentLedgerNotRecordOwner. Now an id that is not one of the
    # patient's own records names one of the patient's batch records (the chain cannot tell):
    # the supersede retires that name in the patient's namespace and leaves patient2's record
    # exactly as it was.
    bench.tx(bench.ledger.functions.registerRecord(RID, COMMIT, LABS), actors.patient2)
    deadline = bench.now() + 3600
    theirs = register_record_typed_data(bench.domain(), patient=actors.patient, record_id=RID2,
                                        commitment=COMMIT, scope_id=LABS, nonce=0,
                                        deadline=deadline, supersedes=RID)
    receipt = bench.tx(bench.ledger.functions.registerRecordBySig(
        actors.patient, RID2, COMMIT, LABS, RID, deadline, bench.sign(theirs, actors.patient)),
        actors.stranger)
    assert [name for name, _ in bench.event_list(receipt)] == ["RecordRegistered",
                                                               "RecordSuperseded"]
    assert bench.ledger.functions.recordOf(RID).call()[0] == actors.patient2
    assert bench.ledger.functions.recordOf(RID).call()[2] is False


def test_registerRecordBySig_revertsForUnknownSupersededOrZeroIds(bench: Bench,
                                                                  actors: Actors) -> None:
    deadline = bench.now() + 3600
    ledger = bench.ledger.functions

    def relay(record_id: bytes, supersedes: bytes) -> ContractFunction:
        typed = register_record_typed_data(bench.domain(), patient=actors.patient,
                                           record_id=record_id, commitment=COMMIT,
                                           scope_id=LABS, nonce=bench.nonce(actors.patient),
                                           deadline=deadline, supersedes=supersedes)
        return ledger.registerRecordBySig(actors.patient, record_id, COMMIT, LABS, supersedes,
                                          deadline, bench.sign(typed, actors.patient))

    bench.reverts(relay(ZERO, ZERO), actors.stranger, "ConsentLedgerInvalidRecordId",
                  recordId=ZERO)
    bench.tx(relay(RID, ZERO), actors.stranger)
    bench.tx(relay(RID2, RID), actors.stranger)
    bench.reverts(relay(b32("record:3"), RID), actors.stranger, "ConsentLedgerRecordSuperseded",
                  recordId=RID)
    # An id no record has (before #12: ConsentLedgerUnknownRecord) names one of the patient's
    # batch records: retired once, and only once.
    bench.tx(relay(b32("record:4"), b32("batch record")), actors.stranger)
    bench.reverts(relay(b32("record:5"), b32("batch record")), actors.stranger,
                  "ConsentLedgerRecordSuperseded", recordId=b32("batch record"))
    assert bench.nonce(actors.patient) == 3  # only the three successful relays used a nonce
