"""Data requests over the real API (uvicorn on a free port, the same anvil stack): the
patient's and the provider's clients speak only HTTP (ApiService + the data-request routes);
the lifecycle ends with the files as the patient's records; the FHIR Task export; strangers,
non-providers and hostile bodies answered with the exception tree's statuses."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from local_stack import LocalStack
from pydantic import SecretStr

from kizuna.api.app import create_app
from kizuna.chain.localnode import dev_private_keys, free_port
from kizuna.client import data_requests as client
from kizuna.client.api_service import ApiService
from kizuna.client.http import ApiClient
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.config import Settings
from kizuna.errors import ConflictError, InputError, NotFoundError
from kizuna.wire import data_requests as dr
from kizuna.wire.onchain import SentTransaction

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def api_url(stack: LocalStack) -> Iterator[str]:
    port = free_port()
    settings = Settings(environment="development", rpc_url=stack.node.rpc_url,
                        api_port=port, siwe_domain=f"127.0.0.1:{port}",
                        siwe_uri=f"http://127.0.0.1:{port}",
                        relayer_key=SecretStr(dev_private_keys(2)[1]),
                        session_secret=SecretStr(os.urandom(32).hex()))
    server = uvicorn.Server(uvicorn.Config(create_app(settings, ctx=stack.ctx),
                                           host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def _over_http(stack: LocalStack, url: str) -> tuple[PatientClient, ProviderClient, ApiClient,
                                                  ApiClient]:
    local_provider = stack.provider()  # registered in the provider registry
    patient_signer = stack.signer()
    patient_api, provider_api = ApiClient(url), ApiClient(url)
    patient_api.login(patient_signer)
    provider_api.login(local_provider.signer)
    patient = PatientClient(signer=patient_signer, service=ApiService(patient_api, stack.chain),
                            chain=stack.chain)
    patient.publish_inbox_key()
    provider = ProviderClient(signer=local_provider.signer,
                              service=ApiService(provider_api, stack.chain), chain=stack.chain)
    patient.add_record(b'{"resourceType":"Basic"}', label="Basic",
                       content_type="application/fhir+json")
    patient.grant(provider.address, ["Basic"], expires_at=stack.now() + 86_400 * 60)
    return patient, provider, patient_api, provider_api


def test_lifecycle_over_http(stack: LocalStack, api_url: str, tmp_path: Path) -> None:
    patient, provider, patient_api, _ = _over_http(stack, api_url)
    mine, theirs = client.transport(patient.service), client.transport(provider.service)
    assert isinstance(mine, client.ApiDataRequests)
    asked = client.ask(mine, patient, provider.address, types=["Observation"],
                       since="2024", note="the 2024 labs")
    listed = theirs.to_provider(provider.address)
    assert [r.request_id for r in listed] == [asked.request_id]
    assert client.read_note(theirs, provider, listed[0]) == "the 2024 labs"
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "id": f"o{i}", "status": "final",
                      "code": {"text": "Glucose"}, "effectiveDateTime": f"2024-05-0{i}",
                      "valueQuantity": {"value": 90 + i, "unit": "mg/dL"}}}
        for i in range(1, 4)]}
    client.answer(theirs, provider, asked.request_id, dr.ACKNOWLEDGED)
    done = client.answer(theirs, provider, asked.request_id, dr.FULFILLED,
                         files=[(json.dumps(bundle).encode(), "application/fhir+json")])
    assert done.status == dr.FULFILLED and done.now >= done.asked_at

    result = client.receive(mine, patient, asked.request_id, journal_root=tmp_path)
    assert result.registered == 6 and len(result.batches) == 1  # 3 resources + 3 Provenance
    seen = mine.of_patient(patient.address)[0]
    assert seen.status == dr.FULFILLED and [a.state for a in seen.answers] == [
        dr.ACKNOWLEDGED, dr.FULFILLED]

    inbox = httpx.get(f"{api_url}/patient/inbox", headers=patient_api._headers()).json()
    assert [i["kind"] for i in inbox if i["ref"] == "0x" + asked.request_id.hex()] == [
        "data-request-fulfilled"]

    tasks = httpx.get(f"{api_url}/patient/data-requests/tasks",
                      headers=patient_api._headers()).json()
    task = tasks["entry"][0]["resource"]
    assert task["resourceType"] == "Task" and task["status"] == "completed"
    assert task["restriction"]["period"]["end"] == dr.iso_utc(asked.deadline)


def test_strangers_and_hostile_bodies_over_http(stack: LocalStack, api_url: str) -> None:
    patient, provider, patient_api, _ = _over_http(stack, api_url)
    mine, theirs = client.transport(patient.service), client.transport(provider.service)
    asked = client.ask(mine, patient, provider.address, types=["Condition"])
    rid = "0x" + asked.request_id.hex()

    stranger = stack.provider()
    stranger_api = ApiClient(api_url)
    stranger_api.login(stranger.signer)
    with pytest.raises(NotFoundError):  # 404: not even whether the request exists
        stranger_api._call("GET", f"/data-requests/{rid}")
    with pytest.raises(NotFoundError):
        stranger_api._call("POST", f"/provider/data-requests/{rid}/answers", body={
            "state": "declined", "reason": "no", "deliveries": [], "nonce": "0x" + "11" * 32,
            "tx_hash": "0x" + "22" * 32})
    assert stranger_api._call("GET", "/provider/data-requests") == []
    # the patient is not a provider: the provider routes are refused (403, role at the head)
    refused = httpx.get(f"{api_url}/provider/data-requests", headers=patient_api._headers())
    assert refused.status_code == 403

    def post(body: dict[str, object]) -> httpx.Response:
        return httpx.post(f"{api_url}/patient/data-requests", json=body,
                          headers=patient_api._headers())

    good: dict[str, object] = {"provider": provider.address, "types": ["Observation"],
                               "nonce": "0x" + "33" * 32, "tx_hash": "0x" + "44" * 32}
    cases: list[tuple[dict[str, object], str]] = [
        ({"types": ["Nope"]}, "types[0]"), ({"types": []}, "types"),
        ({"since": "2024-02-30"}, "since"), ({"deadline_days": -1}, "deadline_days"),
        ({"provider": patient.address}, "provider"), ({"nonce": "0x12"}, "nonce"),
        ({"extra": 1}, "extra")]
    for bad, field in cases:
        answer = post({**good, **bad})
        assert answer.status_code == 422, (bad, answer.text)
        assert field in answer.text, (bad, answer.text)
    # a transaction hash the node never saw: refused naming it, nothing kept
    unknown = post(good)
    assert unknown.status_code == 422 and "txHash" in unknown.text
    assert len(mine.of_patient(patient.address)) == 1

    with pytest.raises(InputError):
        theirs.answer(provider=provider.address, request_id=asked.request_id, state="done",
                      reason=None, deliveries=[], nonce=b"\x01" * 32,
                      transaction=SentTransaction(b"\x02" * 32))
    client.answer(theirs, provider, asked.request_id, dr.DECLINED, reason="not held here")
    with pytest.raises(ConflictError):  # 409 from the service as well as from the client
        theirs.answer(provider=provider.address, request_id=asked.request_id,
                      state=dr.ACKNOWLEDGED, reason=None, deliveries=[], nonce=b"\x01" * 32,
                      transaction=SentTransaction(b"\x02" * 32))
    declined = mine.get(asked.request_id, reader=patient.address)
    assert declined.status == dr.DECLINED and declined.answers[-1].reason == "not held here"
