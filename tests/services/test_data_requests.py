"""Data requests on anvil: a patient asks a provider for records, the provider acknowledges,
fulfils in part then in whole (the files become the patient's records, one batch, with a
Provenance naming the provider and the request) or declines; each step a care event on-chain;
overdue from chain time; strangers and hostile inputs refused. The provider holds no grant of the
patient: the patient's request alone lets it answer (docs/contracts.md "Data requests")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_stack import LocalStack

from kizuna.chain.models import CareEventKind
from kizuna.client import data_requests as client
from kizuna.client.local import LocalDataRequests
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.errors import (
    AccessDenied,
    ConflictError,
    ContractReverted,
    EnvelopeFormatError,
    InputError,
    NotFoundError,
)
from kizuna.storage.envelope import encrypt_bytes
from kizuna.types import RecordId
from kizuna.wire import data_requests as dr
from kizuna.wire.onchain import SentTransaction

LAB = {"resourceType": "Observation", "id": "hb-2024", "status": "final",
       "category": [{"coding": [{
           "system": "http://terminology.hl7.org/CodeSystem/observation-category",
           "code": "laboratory"}]}],
       "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}],
                "text": "Hemoglobin"},
       "effectiveDateTime": "2024-03-02",
       "valueQuantity": {"value": 13.9, "unit": "g/dL"}}


def _pair(stack: LocalStack) -> tuple[PatientClient, ProviderClient]:
    """A patient with a record and a provider it never granted anything, and which never asked
    for access: the request alone lets the provider answer (and read nothing)."""
    patient, provider = stack.patient(), stack.provider()
    patient.add_record(b'{"resourceType":"Basic"}', label="Basic",
                       content_type="application/fhir+json")
    assert not [g for g in provider.service.grants_to(provider=provider.address)
                if g.patient == patient.address]
    return patient, provider


def _kinds(stack: LocalStack, patient: PatientClient) -> list[CareEventKind]:
    events = stack.ctx.index.care_events(patient=patient.address)
    return [e.kind for e in reversed(events) if e.kind >= CareEventKind.DATA_REQUESTED]


def test_lifecycle_to_records_with_provenance(stack: LocalStack, tmp_path: Path) -> None:
    api = LocalDataRequests(stack.ctx)
    patient, provider = _pair(stack)
    asked = client.ask(api, patient, provider.address, types=["Observation", "DiagnosticReport"],
                       since="2024-01-01", until="2024-12-31",
                       note="All my lab results from 2024, please")
    assert asked.status == dr.OPEN and asked.fields.deadline_days == 30
    assert asked.deadline == asked.asked_at + 30 * 86_400
    # The chain holds a commitment only, never the fields.
    event = stack.ctx.index.care_events(patient=patient.address,
                                        kind=CareEventKind.DATA_REQUESTED)[0]
    assert event.ref == asked.request_id and event.actor == patient.address
    assert event.provider == provider.address

    # The ledger opened the request for the provider it names.
    assert stack.ctx.chain.ledger.data_request_of(patient.address, asked.request_id) == (
        provider.address, False)

    mine = api.to_provider(provider.address)
    assert [r.request_id for r in mine] == [asked.request_id]
    assert client.read_note(api, provider, mine[0]) == "All my lab results from 2024, please"
    assert mine[0].fields.types == ("DiagnosticReport", "Observation")

    acked = client.answer(api, provider, asked.request_id, dr.ACKNOWLEDGED)
    assert acked.status == dr.ACKNOWLEDGED
    with pytest.raises(ConflictError):
        client.answer(api, provider, asked.request_id, dr.ACKNOWLEDGED)
    part = client.answer(api, provider, asked.request_id, dr.FULFILLED_IN_PART,
                         files=[(json.dumps(LAB).encode(), "application/fhir+json")])
    assert part.status == dr.FULFILLED_IN_PART and len(part.deliveries) == 1
    done = client.answer(api, provider, asked.request_id, dr.FULFILLED,
                         files=[(b"%PDF-1.4 discharge summary", "application/pdf")])
    assert done.status == dr.FULFILLED and not done.overdue
    with pytest.raises(ConflictError):
        client.answer(api, provider, asked.request_id, dr.DECLINED, reason="too late")
    # Closed on-chain too: the ledger itself takes no answer after the fulfilment.
    assert stack.ctx.chain.ledger.data_request_of(patient.address, asked.request_id) == (
        provider.address, True)
    with pytest.raises(ContractReverted) as reverted:
        provider.chain.ledger.answer_data_request(
            patient.address, asked.request_id, CareEventKind.DATA_REQUEST_DECLINED,
            dr.answer_commitment(request_id=asked.request_id, state=dr.DECLINED,
                                 reason="late", deliveries=[], nonce=b"\x01" * 32),
            signer=provider.signer)
    assert reverted.value.name == "ConsentLedgerDataRequestNotOpen"
    # Answering gave the provider no read access to the patient's records.
    assert not stack.ctx.chain.ledger.has_access(patient.address, provider.address,
                                                 patient.keys.scope_id("Basic"))
    assert _kinds(stack, patient) == [
        CareEventKind.DATA_REQUESTED, CareEventKind.DATA_REQUEST_ACKNOWLEDGED,
        CareEventKind.DATA_REQUEST_FULFILLED_IN_PART, CareEventKind.DATA_REQUEST_FULFILLED]

    # The records listing is ordered by time, then by record id: a record added earlier in
    # the same second may sort after the received ones, so they are told apart by id.
    before = {bytes(r.record_id) for r in patient.records()}
    result = client.receive(api, patient, asked.request_id, journal_root=tmp_path)
    assert result.registered == 4 and len(result.batches) == 1  # 2 resources + 2 Provenance
    again = client.receive(api, patient, asked.request_id, journal_root=tmp_path)
    assert again.registered == 0
    records = patient.records()
    received = [r for r in records if bytes(r.record_id) not in before]
    assert len(records) == len(before) + 4 and len(received) == 4
    contents = [json.loads(patient.read_own(r.record_id)) for r in received]
    lab = next(c for c in contents if c["resourceType"] == "Observation")
    assert lab["valueQuantity"]["value"] == 13.9
    document = next(c for c in contents if c["resourceType"] == "DocumentReference")
    assert document["content"][0]["attachment"]["contentType"] == "application/pdf"
    provenances = [c for c in contents if c["resourceType"] == "Provenance"]
    assert {p["target"][0]["reference"] for p in provenances} == {
        "Observation/hb-2024", f"DocumentReference/{document['id']}"}
    for p in provenances:
        assert p["agent"][0]["who"]["identifier"]["value"] == provider.address
        assert p["entity"][0]["what"]["identifier"]["value"] == "0x" + asked.request_id.hex()

    task = dr.fhir_task(api.get(asked.request_id, reader=patient.address))
    assert task["status"] == "completed" and task["intent"] == "order"
    assert task["restriction"]["period"]["end"] == dr.iso_utc(asked.deadline)
    assert {i.get("valueCode") for i in task["input"]} >= {"Observation", "DiagnosticReport"}


def test_decline_and_overdue_from_chain_time(stack: LocalStack) -> None:
    api = LocalDataRequests(stack.ctx)
    patient, provider = _pair(stack)
    late = client.ask(api, patient, provider.address, types=["Immunization"], deadline_days=2)
    declined = client.ask(api, patient, provider.address, types=["Condition"])
    client.answer(api, provider, declined.request_id, dr.DECLINED,
                  reason="We hold no records of yours before 2020")
    stack.advance(86_400 + 60)
    assert api.get(late.request_id, reader=patient.address).status == dr.OPEN
    stack.advance(86_400)  # past the 2-day deadline by chain time
    states = {r.request_id: r for r in api.of_patient(patient.address)}
    assert states[late.request_id].status == dr.OVERDUE
    assert states[late.request_id].state == dr.OPEN
    assert states[declined.request_id].status == dr.DECLINED  # answered: never overdue
    assert dr.fhir_task(states[declined.request_id])["statusReason"]["text"].startswith("We hold")
    task = dr.fhir_task(states[late.request_id])
    assert task["status"] == "requested" and task["businessStatus"]["text"] == "overdue"
    # The patient's inbox (and the provider's) shows each request's status.
    inbox = {bytes(i.ref): i.kind for i in patient.inbox()}
    assert inbox[late.request_id] == "data-request-overdue"
    assert inbox[declined.request_id] == "data-request-declined"
    assert {bytes(i.ref): i.kind for i in provider.inbox()}[late.request_id] == \
        "data-request-overdue"
    # Acknowledging does not stop the clock.
    client.answer(api, provider, late.request_id, dr.ACKNOWLEDGED)
    assert api.get(late.request_id, reader=provider.address).status == dr.OVERDUE


def test_a_stranger_cannot_answer_or_see(stack: LocalStack) -> None:
    api = LocalDataRequests(stack.ctx)
    patient, provider = _pair(stack)
    stranger = stack.provider()
    asked = client.ask(api, patient, provider.address, types=["Observation"])
    with pytest.raises(NotFoundError):
        api.get(asked.request_id, reader=stranger.address)
    with pytest.raises(NotFoundError):
        client.answer(api, stranger, asked.request_id, dr.DECLINED, reason="not mine")
    with pytest.raises(NotFoundError):
        api.upload(provider=stranger.address, request_id=asked.request_id,
                   message_id=b"\x01" * 32, envelope=b"x")
    # The patient is a party but not the provider: cannot answer their own request.
    with pytest.raises(AccessDenied):
        api.answer(provider=patient.address, request_id=asked.request_id,
                   state=dr.ACKNOWLEDGED, reason=None, deliveries=[], nonce=b"\x02" * 32,
                   transaction=SentTransaction(b"\x03" * 32))
    # On-chain, the ledger refuses an answer from anyone but the provider the request names,
    # and an answer kind logged as a plain care event (even by the patient, naming the provider).
    nonce = b"\x04" * 32
    ref = dr.answer_commitment(request_id=asked.request_id, state=dr.DECLINED, reason="no",
                               deliveries=[], nonce=nonce)
    with pytest.raises(ContractReverted) as reverted:
        stranger.chain.ledger.answer_data_request(
            patient.address, asked.request_id, CareEventKind.DATA_REQUEST_DECLINED, ref,
            signer=stranger.signer)
    assert reverted.value.name == "ConsentLedgerDataRequestNotOpen"
    with pytest.raises(ContractReverted) as reverted:
        patient.chain.ledger.log_care_event(
            patient.address, CareEventKind.DATA_REQUEST_DECLINED, ref, signer=patient.signer,
            provider=provider.address)
    assert reverted.value.name == "ConsentLedgerWrongCareEventKind"
    # The provider's answer to ANOTHER request cannot be passed off as this one's, even with
    # a ref naming this request: the ledger's DataRequestAnswered names the request it closed.
    other = client.ask(api, patient, provider.address, types=["Condition"])
    receipt = provider.chain.ledger.answer_data_request(
        patient.address, other.request_id, CareEventKind.DATA_REQUEST_DECLINED, ref,
        signer=provider.signer)
    with pytest.raises(InputError) as caught:
        api.answer(provider=provider.address, request_id=asked.request_id, state=dr.DECLINED,
                   reason="no", deliveries=[], nonce=nonce,
                   transaction=SentTransaction(receipt.tx_hash))
    assert caught.value.field == "txHash" and "DataRequestAnswered" in str(caught.value)
    assert api.get(asked.request_id, reader=patient.address).status == dr.OPEN


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"types": []}, "types"),
    ({"types": "Observation"}, "types"),
    ({"types": ["Observation", "NotAType"]}, "types[1]"),
    ({"types": ["<script>"]}, "types[0]"),
    ({"types": ["Observation"] * 65}, "types"),
    ({"types": ["Observation"], "since": "2024-13-01"}, "since"),
    ({"types": ["Observation"], "until": "yesterday"}, "until"),
    ({"types": ["Observation"], "since": "2024-06-01", "until": "2024-01-01"}, "until"),
    ({"types": ["Observation"], "deadline_days": 0}, "deadline_days"),
    ({"types": ["Observation"], "deadline_days": 10_000}, "deadline_days"),
    ({"types": ["Observation"], "deadline_days": True}, "deadline_days"),
])
def test_hostile_fields(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"since": None, "until": None, "deadline_days": None, **kwargs}
    with pytest.raises(InputError) as caught:
        dr.checked_fields(**args)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_hostile_answers(stack: LocalStack) -> None:
    api = LocalDataRequests(stack.ctx)
    patient, provider = _pair(stack)
    asked = client.ask(api, patient, provider.address, types=["Observation"])
    other = client.ask(api, patient, provider.address, types=["Condition"])
    for state, reason, field in [("declined", None, "reason"), ("declined", "  ", "reason"),
                                 ("declined", "x" * 2001, "reason"),
                                 ("acknowledged", "why", "reason"),
                                 ("fulfilled-in-part", None, "deliveries"),
                                 ("fulfilled", None, "deliveries"), ("closed", None, "state")]:
        with pytest.raises(InputError) as caught:
            api.answer(provider=provider.address, request_id=asked.request_id, state=state,
                       reason=reason, deliveries=[], nonce=b"\x05" * 32,
                       transaction=SentTransaction(b"\x06" * 32))
        assert caught.value.field == field, (state, reason)
    # A file uploaded for one request cannot be named by an answer to another.
    envelope = encrypt_bytes(b"{}", owner_key=provider.public_key,
                             record_id=RecordId(b"\x07" * 32),
                             content_type="application/fhir+json")
    up = api.upload(provider=provider.address, request_id=other.request_id,
                    message_id=b"\x07" * 32, envelope=bytes(envelope))
    with pytest.raises(InputError) as caught:
        api.answer(provider=provider.address, request_id=asked.request_id,
                   state=dr.FULFILLED, reason=None, deliveries=[up.commitment],
                   nonce=b"\x05" * 32, transaction=SentTransaction(b"\x06" * 32))
    assert caught.value.field == "deliveries[0]"
    # Not an envelope at all: refused by the envelope's own checks, nothing kept.
    with pytest.raises(EnvelopeFormatError):
        api.upload(provider=provider.address, request_id=asked.request_id,
                   message_id=b"\x08" * 32, envelope=b"not an envelope")
    assert api.get(asked.request_id, reader=provider.address).deliveries == ()
    # Asking someone who is not a provider of the registry: refused before any transaction.
    stranger = stack.signer()
    events = len(stack.ctx.index.care_events(patient=patient.address))
    with pytest.raises(InputError) as caught:
        client.ask(api, patient, stranger.address, types=["Observation"])
    assert caught.value.field == "provider"
    assert len(stack.ctx.index.care_events(patient=patient.address)) == events
    # A request id nobody made.
    with pytest.raises(NotFoundError):
        api.get(b"\x09" * 32, reader=patient.address)
