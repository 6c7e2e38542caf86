"""The participants' side of data requests (the service: :mod:`kizuna.services.data_requests`;
the rules and types both use: :mod:`kizuna.wire.data_requests`).

The patient asks (:func:`ask`: the note sealed to the provider's registry key, the request's
commitment logged on-chain by the patient's own transaction) and takes a fulfilment in as
records (:func:`receive`: each file decrypted with the patient's inbox key and checked against
the commitment the provider's on-chain answer names, a Provenance added per resource naming the
provider and the request, all registered as ONE batch by the import pipeline). The provider
acknowledges, fulfils (files sealed to the patient's signed inbox key) or declines
(:func:`answer`), each its own ``answerDataRequest``: the patient's request is its authority
(no grant needed).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import httpx

from kizuna.chain.models import CareEventKind
from kizuna.client.chainview import patient_encryption_key
from kizuna.client.http import (
    ApiClient,
    api_error,  # the one mapping of answers to errors
)
from kizuna.client.importer import Importer, ImportResult, bundle_source, record_id_of
from kizuna.crypto.commitment import commitment_of
from kizuna.errors import (
    AccessDenied,
    InputError,
    IntegrityError,
    NodeUnreachable,
    NotFoundError,
)
from kizuna.storage.envelope import decrypt_bytes, encrypt_bytes
from kizuna.types import Cid, Commitment, RecordId, checked_address
from kizuna.wire import data_requests as dr
from kizuna.wire.onchain import SentTransaction

if TYPE_CHECKING:
    from kizuna.client.local import LocalDataRequests
    from kizuna.client.patient import PatientClient
    from kizuna.client.provider import ProviderClient

FHIR_JSON = "application/fhir+json"


def _b(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def request_of_json(data: dict[str, Any]) -> dr.DataRequest:
    """A request as the API answers it (``DataRequestOut``)."""
    return dr.DataRequest(
        request_id=Commitment(_b(data["request_id"])), patient=data["patient"],
        provider=data["provider"],
        fields=dr.AskFields(types=tuple(data["types"]), since=data["since"],
                            until=data["until"], deadline_days=int(data["deadline_days"])),
        nonce=_b(data["nonce"]),
        note_ref=Commitment(_b(data["note_ref"])) if data["note_ref"] else None,
        tx_hash=_b(data["tx_hash"]), block_number=int(data["block_number"]),
        asked_at=int(data["asked_at"]), now=int(data["as_of"]),
        answers=tuple(dr.Answer(
            ref=Commitment(_b(a["ref"])), state=a["state"], reason=a["reason"],
            nonce=_b(a["nonce"]), tx_hash=_b(a["tx_hash"]),
            block_number=int(a["block_number"]), answered_at=int(a["answered_at"]),
            deliveries=tuple(dr.Delivery(commitment=Commitment(_b(d["commitment"])),
                                         cid=Cid(d["cid"]), content_type=d["content_type"],
                                         size=int(d["size"])) for d in a["deliveries"]))
            for a in data["answers"]))


def _hx(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class ApiDataRequests:
    """The same calls over the API's routes (:mod:`kizuna.api.routes.data_requests`)."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def ask(self, *, patient: str, provider: str, types: Sequence[str], since: str | None,
            until: str | None, deadline_days: int | None, nonce: bytes,
            note_id: bytes | None, note: bytes | None,
            transaction: SentTransaction) -> dr.DataRequest:
        body = {"provider": provider, "types": list(types), "since": since, "until": until,
                "deadline_days": deadline_days, "nonce": _hx(nonce),
                "note_id": _hx(note_id) if note_id is not None else None,
                "note": _hx(note) if note is not None else None,
                "tx_hash": _hx(transaction.tx_hash)}
        return request_of_json(self.api._call("POST", "/patient/data-requests", body=body))

    def get(self, request_id: bytes, *, reader: str) -> dr.DataRequest:
        return request_of_json(self.api._call("GET", f"/data-requests/{_hx(request_id)}"))

    def of_patient(self, patient: str) -> list[dr.DataRequest]:
        return [request_of_json(r) for r in self.api._call("GET", "/patient/data-requests")]

    def to_provider(self, provider: str) -> list[dr.DataRequest]:
        return [request_of_json(r) for r in self.api._call("GET", "/provider/data-requests")]

    def note(self, *, reader: str, request_id: bytes) -> bytes:
        return b"".join(self.api._stream(f"/data-requests/{_hx(request_id)}/note"))

    def upload(self, *, provider: str, request_id: bytes, message_id: bytes,
               envelope: bytes) -> dr.Delivery:
        path = f"/provider/data-requests/{_hx(request_id)}/deliveries/{_hx(message_id)}"
        try:
            response = self.api.http.put(path, content=envelope, headers={
                **self.api._headers(), "Content-Type": "application/octet-stream"})
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"the Kizuna API does not answer: {exc}") from None
        if response.status_code >= 400:
            raise api_error(response)
        d = response.json()
        return dr.Delivery(commitment=Commitment(_b(d["commitment"])), cid=Cid(d["cid"]),
                           content_type=d["content_type"], size=int(d["size"]))

    def answer(self, *, provider: str, request_id: bytes, state: str, reason: str | None,
               deliveries: Sequence[bytes], nonce: bytes,
               transaction: SentTransaction) -> dr.DataRequest:
        body = {"state": state, "reason": reason, "deliveries": [_hx(d) for d in deliveries],
                "nonce": _hx(nonce), "tx_hash": _hx(transaction.tx_hash)}
        return request_of_json(self.api._call(
            "POST", f"/provider/data-requests/{_hx(request_id)}/answers", body=body))

    def delivery(self, *, reader: str, request_id: bytes, commitment: bytes) -> bytes:
        return b"".join(self.api._stream(
            f"/data-requests/{_hx(request_id)}/deliveries/{_hx(commitment)}/content"))


DataRequestsApi: TypeAlias = "LocalDataRequests | ApiDataRequests"


def transport(service: object) -> DataRequestsApi:
    """The data-request calls for a client's service: in-process or over the API."""
    from kizuna.client.api_service import ApiService

    if isinstance(service, ApiService):
        return ApiDataRequests(service.api)
    # Local mode only: LocalService (and with it the service) is loaded when it was opened.
    from kizuna.client.local import LocalDataRequests, LocalService

    if isinstance(service, LocalService):
        return LocalDataRequests(service.ctx)
    raise TypeError(f"no data-request transport for {type(service).__name__}")


# --- the patient --------------------------------------------------------------------------------


def ask(api: DataRequestsApi, patient: PatientClient, provider: str, *,
        types: Sequence[str], since: str | None = None, until: str | None = None,
        deadline_days: int | None = None, note: str | None = None) -> dr.DataRequest:
    """Ask ``provider`` for records of ``types`` in a period; the note only it can read."""
    to = checked_address("provider", provider)
    fields = dr.checked_fields(types=types, since=since, until=until,
                               deadline_days=deadline_days)
    try:  # an active provider of the registry, read from the patient's side: before any tx
        key = patient.service.provider_key(to)
    except (NotFoundError, AccessDenied) as exc:
        raise InputError("provider", str(exc)) from None
    note_id = note_envelope = None
    if note is not None:
        note_id = os.urandom(32)
        note_envelope = bytes(encrypt_bytes(note.encode(), owner_key=key,
                                            record_id=RecordId(note_id),
                                            content_type="text/plain"))
    nonce = os.urandom(32)
    ref = dr.request_commitment(
        patient=patient.address, provider=to, fields=fields,
        note_ref=commitment_of(note_envelope) if note_envelope is not None else None,
        nonce=nonce)
    receipt = patient.chain.ledger.log_care_event(
        patient.address, CareEventKind.DATA_REQUESTED, ref, signer=patient.signer,
        provider=to)
    return api.ask(patient=patient.address, provider=to, types=list(fields.types),
                   since=fields.since, until=fields.until, deadline_days=fields.deadline_days,
                   nonce=nonce, note_id=note_id, note=note_envelope,
                   transaction=SentTransaction(receipt.tx_hash))


def _resources(content: bytes, content_type: str, title: str) -> list[dict[str, Any]]:
    """The FHIR resources of one delivered file: a Bundle's entries, a resource, or any other
    document wrapped in a DocumentReference (attachment inline)."""
    if content_type.split(";")[0].strip().lower() in (FHIR_JSON, "application/json"):
        try:
            data = json.loads(content)
        except ValueError:
            raise InputError("delivery", f"{title} is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise InputError("delivery", f"{title} is not a FHIR resource")
        if data["resourceType"] == "Bundle":
            return [e["resource"] for e in data.get("entry", [])
                    if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        return [data]
    return [{"resourceType": "DocumentReference", "status": "current",
             "content": [{"attachment": {"contentType": content_type, "title": title,
                                         "data": base64.b64encode(content).decode()}}]}]


def _stable_id(*parts: str) -> str:
    """An id that is the same on every run (a received fulfilment imported twice is the same
    Bundle, so the import pipeline registers it once)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:kizuna:data-request:" + ":".join(parts)))


def provenance(resource: dict[str, Any], request: dr.DataRequest,
               answer: dr.Answer) -> dict[str, Any]:
    """A Provenance for a received resource: authored by the provider, the request the source,
    recorded when the provider's answer was mined (chain time)."""
    target = f"{resource['resourceType']}/{resource['id']}"
    return {
        "resourceType": "Provenance", "id": _stable_id(answer.ref.hex(), target),
        "target": [{"reference": target}],
        "recorded": dr.iso_utc(answer.answered_at),
        "activity": {"text": "Sent by the provider in answer to the patient's data request"},
        "agent": [{"type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
            "code": "author"}]},
            "who": {"identifier": {"system": "urn:ethereum:address",
                                   "value": request.provider}}}],
        "entity": [{"role": "source", "what": {"identifier": {
            "system": "urn:kizuna:data-request", "value": "0x" + request.request_id.hex()}}},
            {"role": "source", "what": {"identifier": {
                "system": "urn:kizuna:care-event", "value": "0x" + answer.ref.hex()}}}],
    }


def received_bundle(api: DataRequestsApi, patient: PatientClient,
                    request: dr.DataRequest) -> dict[str, Any]:
    """Every file sent for ``request``, decrypted and checked, as one collection Bundle with a
    Provenance per resource. A file is checked against the commitment its answer names, and
    the answer against its on-chain event (recomputed here from what the service says)."""
    entries, _ = _received(api, patient, request)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _received(api: DataRequestsApi, patient: PatientClient, request: dr.DataRequest
              ) -> tuple[list[dict[str, Any]], list[tuple[bytes, int]]]:
    """:func:`received_bundle`'s entries, and each entry's source: the commitment of the file
    it came from and its position among that file's entries (resource ``k`` at ``2k``, its
    Provenance at ``2k + 1``) — what names its record (:func:`received_record_ids`). A file
    named by two answers is taken once."""
    entries: list[dict[str, Any]] = []
    sources: list[tuple[bytes, int]] = []
    seen: set[bytes] = set()
    for answer in request.answers:
        if not answer.deliveries:
            continue
        expected = dr.answer_commitment(request_id=request.request_id, state=answer.state,
                                        reason=answer.reason,
                                        deliveries=[d.commitment for d in answer.deliveries],
                                        nonce=answer.nonce)
        if expected != answer.ref:
            raise IntegrityError("the service's account of an answer does not match its "
                                 "on-chain reference")
        _check_on_chain(patient, request, answer)
        for n, d in enumerate(answer.deliveries):
            if bytes(d.commitment) in seen:
                continue
            seen.add(bytes(d.commitment))
            envelope = api.delivery(reader=patient.address, request_id=request.request_id,
                                    commitment=d.commitment)
            if commitment_of(envelope) != d.commitment:
                raise IntegrityError(f"file 0x{d.commitment.hex()} does not match the "
                                     "commitment the provider sent on-chain")
            content = bytes(decrypt_bytes(envelope,
                                          owner_sk=patient.keys.wallet.decrypting_key))
            for k, resource in enumerate(_resources(content, d.content_type,
                                                    f"file {n + 1}")):
                resource = dict(resource)
                resource.setdefault("id", _stable_id(d.commitment.hex(), str(k)))
                entries.append({"resource": resource})
                entries.append({"resource": provenance(resource, request, answer)})
                sources += [(bytes(d.commitment), 2 * k), (bytes(d.commitment), 2 * k + 1)]
    return entries, sources


def received_record_ids(key: bytes, sources: Sequence[tuple[bytes, int]]) -> list[RecordId]:
    """The record ids of received entries: the import pipeline's rule (:func:`~kizuna.client.
    importer.record_id_of`, docs/keys.md) with the delivered file's commitment as the source
    digest. Per file, not per request: a file received again (the request taken twice, or after
    a later answer brought more files) names the same records, so it is registered once. The
    page makes the same ids (web/src/patient/dataRequests.ts)."""
    return [record_id_of(key, commitment, position) for commitment, position in sources]


def _check_on_chain(patient: PatientClient, request: dr.DataRequest,
                    answer: dr.Answer) -> None:
    receipt = patient.chain.sender.wait(answer.tx_hash)
    for event in patient.chain.ledger.events(receipt, "CareEventLogged"):
        args = event.args
        if (bytes(args.get("ref", b"")) == answer.ref
                and str(args.get("actor", "")).lower() == request.provider.lower()
                and str(args.get("patient", "")).lower() == request.patient.lower()
                and int(args.get("kind", -1)) == int(dr.ANSWER_STATES[answer.state])):
            return
    raise IntegrityError(f"transaction 0x{answer.tx_hash.hex()} does not log the provider's "
                         "answer the service describes")


def receive(api: DataRequestsApi, patient: PatientClient, request_id: bytes, *,
            journal_root: Path, workers: int | None = 1) -> ImportResult:
    """Take every file sent for a request in as the patient's records (one batch; a re-run
    registers nothing new: the import's record ids are deterministic)."""
    request = api.get(request_id, reader=patient.address)
    entries, sources = _received(api, patient, request)
    if not entries:
        raise InputError("request", "the provider has sent nothing for this request yet")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    raw = json.dumps(bundle, sort_keys=True).encode()
    source = replace(bundle_source(bundle, raw,
                                   name=f"data-request-{request.request_id.hex()[:12]}"),
                     record_ids=received_record_ids(
                         patient.keys.wallet.import_id_key().reveal(), sources))
    return Importer(patient, journal_root=journal_root, workers=workers).run([source])


# --- the provider -------------------------------------------------------------------------------


def read_note(api: DataRequestsApi, provider: ProviderClient,
              request: dr.DataRequest) -> str | None:
    """The patient's note, decrypted with the provider's key (checked against the request)."""
    if request.note_ref is None:
        return None
    envelope = api.note(reader=provider.address, request_id=request.request_id)
    if commitment_of(envelope) != request.note_ref:
        raise IntegrityError("the note does not match the request's commitment")
    return bytes(decrypt_bytes(envelope, owner_sk=provider.keys.wallet.decrypting_key)).decode()


def answer(api: DataRequestsApi, provider: ProviderClient, request_id: bytes, state: str, *,
           files: Sequence[tuple[bytes, str]] = (), reason: str | None = None
           ) -> dr.DataRequest:
    """Answer a request: ``acknowledged``, ``fulfilled-in-part`` / ``fulfilled`` with ``files``
    ((content, content type) pairs, sealed to the patient's signed inbox key), or ``declined``
    with a reason. The ledger takes the answer on the request's own authority: the provider
    the patient's ``DataRequested`` named, while the request is open (no grant needed)."""
    request = api.get(request_id, reader=provider.address)
    if request.provider != provider.address:
        raise AccessDenied("only the provider the request is addressed to answers it")
    # Checked before anything is sent: a refused answer must leave no event on-chain.
    dr.check_answer(request, state, reason=reason, files=len(files))
    sent = []
    for content, content_type in files:
        key = patient_encryption_key(provider.service, request.patient)
        message_id = os.urandom(32)
        envelope = bytes(encrypt_bytes(content, owner_key=key, record_id=RecordId(message_id),
                                       content_type=content_type))
        sent.append(api.upload(provider=provider.address, request_id=request.request_id,
                               message_id=message_id, envelope=envelope).commitment)
    nonce = os.urandom(32)
    ref = dr.answer_commitment(request_id=request.request_id, state=state, reason=reason,
                               deliveries=sent, nonce=nonce)
    receipt = provider.chain.ledger.answer_data_request(
        request.patient, request.request_id, dr.ANSWER_STATES[state], ref,
        signer=provider.signer)
    return api.answer(provider=provider.address, request_id=request.request_id, state=state,
                      reason=reason, deliveries=sent, nonce=nonce,
                      transaction=SentTransaction(receipt.tx_hash))


__all__ = [
    "ApiDataRequests",
    "DataRequestsApi",
    "answer",
    "ask",
    "provenance",
    "read_note",
    "receive",
    "received_bundle",
    "received_record_ids",
    "request_of_json",
    "transport",
]
