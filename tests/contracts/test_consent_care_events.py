"""ConsentLedger.logCareEvent: who may log for a patient, the flag, and the event's fields."""

from __future__ import annotations

import pytest
from ledger_harness import Actors, Bench, b32, scope_ids
from web3.contract.contract import ContractFunction

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
DAY = 86_400
LABS, MEDS = scope_ids("labs", "meds")
REF = b32("encrypted-payload")
KINDS = {  # CareEventKind in contracts/types/Ids.sol
    "AdviceRequested": 0, "AccessRequested": 1, "BookingRequested": 2, "BookingConfirmed": 3,
    "BookingCancelled": 4, "VisitReported": 5, "PrescriptionIssued": 6, "DataSent": 7,
}
VISIT = KINDS["VisitReported"]


def _log(bench: Bench, actors: Actors, caller: str, *, provider: str | None = None,
         kind: int = VISIT, scope: bytes = LABS) -> ContractFunction:
    return bench.ledger.functions.logCareEvent(actors.patient, kind, REF,
                                               provider if provider is not None else caller,
                                               scope)


def _logged(actors: Actors, provider: str, actor: str, *, kind: int = VISIT,
            flagged: bool = False) -> list[tuple[str, dict[str, object]]]:
    return [("CareEventLogged", {"patient": actors.patient, "provider": provider, "kind": kind,
                                 "actor": actor, "ref": REF, "flaggedForReview": flagged})]


@pytest.mark.parametrize("kind", sorted(KINDS.values()))
def test_logCareEvent_byPatientForEveryKind(bench: Bench, actors: Actors, kind: int) -> None:
    receipt = bench.tx(_log(bench, actors, actors.patient, provider=ZERO_ADDRESS, kind=kind),
                       actors.patient)
    assert bench.event_list(receipt) == _logged(actors, ZERO_ADDRESS, actors.patient, kind=kind)


def test_logCareEvent_byPatientNamingAnyProvider(bench: Bench, actors: Actors) -> None:
    receipt = bench.tx(_log(bench, actors, actors.patient, provider=actors.unverified),
                       actors.patient)
    assert bench.event_list(receipt) == _logged(actors, actors.unverified, actors.patient)


def test_logCareEvent_revertsForAnInvalidKind(bench: Bench, actors: Actors) -> None:
    # 13 is past the enum (DataRequestDeclined is 12): the ABI decoder refuses it (a revert
    # without data).
    bench.reverts(_log(bench, actors, actors.patient, provider=ZERO_ADDRESS, kind=13),
                  actors.patient, "EmptyRevert")


def test_logCareEvent_byLiveGuardianButNotAfterEndDate(bench: Bench, actors: Actors) -> None:
    until = bench.now() + 100
    bench.tx(bench.ledger.functions.appointGuardian(actors.guardian, until), actors.patient)
    receipt = bench.tx(_log(bench, actors, actors.guardian, provider=ZERO_ADDRESS),
                       actors.guardian)
    # Logging emits no GuardianActed: the event names the guardian as actor.
    assert bench.event_list(receipt) == _logged(actors, ZERO_ADDRESS, actors.guardian)
    bench.travel_to(until - 1)
    bench.reverts(_log(bench, actors, actors.guardian, provider=ZERO_ADDRESS), actors.guardian,
                  "ConsentLedgerCareEventNotAllowed", patient=actors.patient,
                  caller=actors.guardian)


def test_logCareEvent_byProviderHoldingALiveGrantOnTheScope(bench: Bench,
                                                            actors: Actors) -> None:
    expires = bench.now() + 100
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, expires), actors.patient)
    receipt = bench.tx(_log(bench, actors, actors.provider), actors.provider)
    assert bench.event_list(receipt) == _logged(actors, actors.provider, actors.provider)
    # Not on another scope, and not once the grant expired.
    bench.reverts(_log(bench, actors, actors.provider, scope=MEDS), actors.provider,
                  "ConsentLedgerCareEventNotAllowed", patient=actors.patient,
                  caller=actors.provider)
    bench.travel_to(expires - 1)
    bench.reverts(_log(bench, actors, actors.provider), actors.provider,
                  "ConsentLedgerCareEventNotAllowed", patient=actors.patient,
                  caller=actors.provider)


@pytest.mark.parametrize("how", ["revoke", "revokeAll"])
def test_logCareEvent_revertsForProviderAfterRevocation(bench: Bench, actors: Actors,
                                                        how: str) -> None:
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, bench.now() + DAY),
             actors.patient)
    bench.tx(_log(bench, actors, actors.provider), actors.provider)
    revoke = (bench.ledger.functions.revoke(actors.provider, LABS) if how == "revoke"
              else bench.ledger.functions.revokeAll(actors.provider))
    bench.tx(revoke, actors.patient)
    bench.reverts(_log(bench, actors, actors.provider), actors.provider,
                  "ConsentLedgerCareEventNotAllowed", patient=actors.patient,
                  caller=actors.provider)


def test_logCareEvent_byProviderWithOpenRequest(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.requestAccess(actors.patient, b32("ask")), actors.provider)
    kind = KINDS["AdviceRequested"]
    receipt = bench.tx(_log(bench, actors, actors.provider, kind=kind, scope=bytes(32)),
                       actors.provider)
    assert bench.event_list(receipt) == _logged(actors, actors.provider, actors.provider,
                                                kind=kind)
    bench.tx(bench.ledger.functions.closeRequest(actors.patient, actors.provider),
             actors.patient)
    bench.reverts(_log(bench, actors, actors.provider, kind=kind), actors.provider,
                  "ConsentLedgerCareEventNotAllowed", patient=actors.patient,
                  caller=actors.provider)


def test_logCareEvent_byProviderUnderEmergencyIsFlagged(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.setEmergencyPolicy(True, DAY), actors.patient)
    bench.tx(bench.ledger.functions.openEmergencyAccess(actors.patient, 600, 3), actors.provider)
    receipt = bench.tx(_log(bench, actors, actors.provider, scope=MEDS), actors.provider)
    assert bench.event_list(receipt) == _logged(actors, actors.provider, actors.provider,
                                                flagged=True)
    # With a live grant on the scope as well, the grant is the authority: not flagged.
    bench.tx(bench.ledger.functions.grant(actors.provider, MEDS, bench.now() + DAY),
             actors.patient)
    receipt = bench.tx(_log(bench, actors, actors.provider, scope=MEDS), actors.provider)
    assert bench.event_list(receipt) == _logged(actors, actors.provider, actors.provider)
    bench.tx(bench.ledger.functions.closeEmergencyAccess(actors.patient, actors.provider),
             actors.patient)
    bench.reverts(_log(bench, actors, actors.provider, scope=LABS), actors.provider,
                  "ConsentLedgerCareEventNotAllowed", patient=actors.patient,
                  caller=actors.provider)


def test_logCareEvent_revertsForAnUnrelatedAddress(bench: Bench, actors: Actors) -> None:
    for caller in (actors.stranger, actors.provider, actors.unverified, actors.patient2):
        bench.reverts(_log(bench, actors, caller), caller, "ConsentLedgerCareEventNotAllowed",
                      patient=actors.patient, caller=caller)


def test_logCareEvent_revertsWhenNamingAnotherProvidersGrant(bench: Bench,
                                                             actors: Actors) -> None:
    # The provider's grant authorises the provider only, not whoever names it.
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, bench.now() + DAY),
             actors.patient)
    for caller in (actors.stranger, actors.provider2):
        bench.reverts(_log(bench, actors, caller, provider=actors.provider), caller,
                      "ConsentLedgerCareEventNotAllowed", patient=actors.patient, caller=caller)


def test_logCareEvent_grantOfAnotherPatientDoesNotCount(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, bench.now() + DAY),
             actors.patient2)
    bench.reverts(_log(bench, actors, actors.provider), actors.provider,
                  "ConsentLedgerCareEventNotAllowed", patient=actors.patient,
                  caller=actors.provider)


def test_logCareEvent_storesNothing(bench: Bench, actors: Actors) -> None:
    bench.tx(bench.ledger.functions.grant(actors.provider, LABS, bench.now() + DAY),
             actors.patient)
    before = bench.storage_root(bench.ledger.address)
    for caller in (actors.patient, actors.provider):
        bench.tx(_log(bench, actors, caller, provider=actors.provider), caller)
    assert bench.storage_root(bench.ledger.address) == before
    bench.tx(bench.ledger.functions.revoke(actors.provider, LABS), actors.patient)
    assert bench.storage_root(bench.ledger.address) != before  # the probe sees writes
