"""The FHIR proxy against the real stack: a plain httpx client acting as an ordinary FHIR client
searches a provider's proxy by type, patient, _id, date, code and category and gets valid R4
searchset Bundles holding exactly the granted resources (ids compared with the set computed
from the patient's own records and scope labels); reads by id; OperationOutcomes for 400 / 404;
paging; nothing of a scope after its revoke; loopback only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from proxy_stack import GRANTED, Story

from kizuna.errors import InputError
from kizuna.fhirproxy import GrantedCache, ProxyServer
from kizuna.storage.fhir.dates import to_timestamp
from kizuna.storage.fhir.validate import validate

pytestmark = pytest.mark.anvil

LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def proxy(story: Story) -> Iterator[httpx.Client]:
    cache = GrantedCache(story.provider, ttl_s=0)
    with ProxyServer(cache, port=0) as server, httpx.Client(base_url=server.url,
                                                             timeout=60) as client:
        yield client


def fhir_get(client: httpx.Client, path: str, status: int = 200, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    validate(body)  # every answer is valid FHIR R4 (raises with every problem otherwise)
    return body


def searchset(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """All resources of a search, following the ``next`` links; checks each page's shape."""
    body = fhir_get(client, path, **params)
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    total = body["total"]
    found: list[dict[str, Any]] = []
    while True:
        links = {link["relation"]: link["url"] for link in body["link"]}
        assert "self" in links
        for entry in body.get("entry", []):
            resource = entry["resource"]
            assert entry["fullUrl"].endswith(f"/{resource['resourceType']}/{resource['id']}")
            assert entry["search"] == {"mode": "match"}
            found.append(resource)
        if "next" not in links:
            break
        response = client.get(links["next"])
        assert response.status_code == 200, response.text
        body = response.json()
        validate(body)
        assert body["total"] == total
    assert len(found) == total
    return found


def ids(resources: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in resources}


def codes(resource: dict[str, Any], element: str = "code") -> set[tuple[str, str]]:
    return {(c.get("system", ""), c["code"]) for c in resource[element].get("coding", [])}


def test_search_by_type_returns_exactly_the_granted_resources(story: Story,
                                                              proxy: httpx.Client) -> None:
    labs = story.resources("Observation:laboratory")
    immunizations = story.resources("Immunization")
    assert labs and immunizations
    assert ids(searchset(proxy, "/Observation", _count=1000)) == ids(labs)
    assert ids(searchset(proxy, "/Immunization")) == ids(immunizations)
    # present in the patient's history but not granted: nothing
    for resource_type in ("Condition", "Encounter", "DiagnosticReport", "Procedure", "Claim"):
        assert any(e.source.resource_type == resource_type for e in story.entries)
        assert searchset(proxy, f"/{resource_type}") == []
    # the resources are the patient's own, with their references made servable
    served = {r["id"]: r for r in searchset(proxy, "/Immunization")}
    for original in immunizations:
        got = served[original["id"]]
        assert got["vaccineCode"] == original["vaccineCode"]
        assert got["occurrenceDateTime"] == original["occurrenceDateTime"]
        assert got["patient"]["reference"] == f"Patient/{story.patient.address}"


def test_search_by_patient_in_every_form(story: Story, proxy: httpx.Client) -> None:
    expected = ids(story.resources("Observation:laboratory"))
    address = story.patient.address
    uuid = story.synthea_patient_id  # what the patient's records name as their subject
    for value in (address, address.lower(), f"Patient/{address}", uuid, f"urn:uuid:{uuid}",
                  f"Patient/{uuid}"):
        assert ids(searchset(proxy, "/Observation", patient=value)) == expected, value
        assert ids(searchset(proxy, "/Observation", subject=value)) == expected, value
    stranger = "0x" + "ab" * 20
    assert searchset(proxy, "/Observation", patient=stranger) == []
    assert searchset(proxy, "/Immunization", patient="Patient/nobody") == []


def test_the_patient_resource(story: Story, proxy: httpx.Client) -> None:
    # the Patient scope is not granted: a minimal Patient whose id is the patient's address
    patients = searchset(proxy, "/Patient")
    assert ids(patients) == {story.patient.address}
    one = fhir_get(proxy, f"/Patient/{story.patient.address}")
    assert one["resourceType"] == "Patient" and "name" not in one
    assert one["identifier"][0]["value"] == story.patient.address
    by_identifier = searchset(proxy, "/Patient", identifier=(
        f"https://kizuna.health/fhir/ethereum-address|{story.patient.address}"))
    assert ids(by_identifier) == {story.patient.address}
    assert searchset(proxy, "/Patient", identifier="urn:other|" + story.patient.address) == []
    # the Synthea Patient (not granted) is not served
    fhir_get(proxy, f"/Patient/{story.synthea_patient_id}", status=404)


def test_search_by_id_and_read(story: Story, proxy: httpx.Client) -> None:
    labs = story.resources("Observation:laboratory")
    first, second = labs[0]["id"], labs[1]["id"]
    assert ids(searchset(proxy, "/Observation", _id=f"{first},{second}")) == {first, second}
    one = fhir_get(proxy, f"/Observation/{first}")
    assert one["id"] == first and one["code"] == labs[0]["code"]
    vital = story.resources("Observation:vital-signs")[0]["id"]
    outcome = fhir_get(proxy, f"/Observation/{vital}", status=404)  # exists, not granted
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"
    assert searchset(proxy, "/Observation", _id=vital) == []
    fhir_get(proxy, "/Observation/no-such-id", status=404)
    assert fhir_get(proxy, "/NoSuchType", status=404)["issue"][0]["code"] == "not-supported"
    fhir_get(proxy, "/HumanName/1", status=404)  # a data type, not a resource


def test_search_by_code(story: Story, proxy: httpx.Client) -> None:
    labs = story.resources("Observation:laboratory")
    system, code = sorted(codes(labs[0]))[0]
    expected = {r["id"] for r in labs if (system, code) in codes(r)}
    assert ids(searchset(proxy, "/Observation", code=f"{system}|{code}")) == expected
    assert ids(searchset(proxy, "/Observation", code=code)) == expected
    assert searchset(proxy, "/Observation", code=f"http://snomed.info/sct|{code}") == []
    # OR within a parameter
    other_system, other = next(c for r in labs for c in sorted(codes(r)) if c[1] != code)
    both = {r["id"] for r in labs if {(system, code), (other_system, other)} & codes(r)}
    assert ids(searchset(proxy, "/Observation", code=f"{code},{other}")) == both
    # a code only vital signs have (not granted): nothing
    vitals = story.resources("Observation:vital-signs")
    lab_codes = {c for r in labs for c in codes(r)}
    vital_code = next(c for r in vitals for c in sorted(codes(r)) if c not in lab_codes)
    assert searchset(proxy, "/Observation", code=f"{vital_code[0]}|{vital_code[1]}") == []
    # Immunization's code is its vaccineCode
    shots = story.resources("Immunization")
    cvx_system, cvx = sorted(codes(shots[0], "vaccineCode"))[0]
    assert ids(searchset(proxy, "/Immunization", code=f"{cvx_system}|{cvx}")) == {
        r["id"] for r in shots if (cvx_system, cvx) in codes(r, "vaccineCode")}


def test_search_by_category(story: Story, proxy: httpx.Client) -> None:
    labs = ids(story.resources("Observation:laboratory"))
    system = "http://terminology.hl7.org/CodeSystem/observation-category"
    assert ids(searchset(proxy, "/Observation", category="laboratory")) == labs
    assert ids(searchset(proxy, "/Observation", category=f"{system}|laboratory")) == labs
    assert searchset(proxy, "/Observation", category="vital-signs") == []


def test_search_by_date_with_prefixes(story: Story, proxy: httpx.Client) -> None:
    labs = story.resources("Observation:laboratory")
    when = {r["id"]: to_timestamp(r["effectiveDateTime"]) for r in labs}
    assert all(when.values())
    days = sorted({t.date() for t in when.values() if t is not None})
    assert len(days) >= 2, "the history should have labs on several days"
    day = days[len(days) // 2]
    start = day.isoformat()

    def expect(test: Any) -> set[str]:
        return {i for i, t in when.items() if t is not None and test(t)}

    got = ids(searchset(proxy, "/Observation", date=f"ge{start}"))
    assert got == expect(lambda t: t.date() >= day) and got
    assert ids(searchset(proxy, "/Observation", date=f"lt{start}")) == expect(
        lambda t: t.date() < day)
    assert ids(searchset(proxy, "/Observation", date=start)) == expect(lambda t: t.date() == day)
    assert ids(searchset(proxy, "/Observation", date=f"eq{start}")) == expect(
        lambda t: t.date() == day)
    assert ids(searchset(proxy, "/Observation", date=f"gt{start}")) == expect(
        lambda t: t.date() > day)
    assert ids(searchset(proxy, "/Observation", date=f"le{start}")) == expect(
        lambda t: t.date() <= day)
    # two date parameters: AND (a range), with a patient and a category too
    first, last = days[0].isoformat(), days[-1].isoformat()
    response = proxy.get("/Observation", params=[
        ("date", f"gt{first}"), ("date", f"lt{last}"), ("patient", story.patient.address),
        ("category", "laboratory")])
    assert response.status_code == 200
    assert {e["resource"]["id"] for e in response.json().get("entry", [])} == expect(
        lambda t: days[0] < t.date() < days[-1])
    # year and month precision
    year = str(days[0].year)
    assert ids(searchset(proxy, "/Observation", date=year, _count=1000)) == expect(
        lambda t: t.year == days[0].year)
    # immunizations by their occurrence
    shots = {r["id"]: to_timestamp(r["occurrenceDateTime"])
             for r in story.resources("Immunization")}
    assert ids(searchset(proxy, "/Immunization", date=f"ge{start}")) == {
        i for i, t in shots.items() if t is not None and t.date() >= day}


def test_paging_links(story: Story, proxy: httpx.Client) -> None:
    labs = ids(story.resources("Observation:laboratory"))
    assert len(labs) > 5
    body = fhir_get(proxy, "/Observation", _count=5)
    assert body["total"] == len(labs) and len(body["entry"]) == 5
    links = {link["relation"]: link["url"] for link in body["link"]}
    assert "_count=5" in links["next"] and "previous" not in links
    assert ids(searchset(proxy, "/Observation", _count=5)) == labs  # follows every next
    last = fhir_get(proxy, "/Observation", _count=5, _offset=len(labs) - 1)
    assert len(last["entry"]) == 1
    assert "next" not in {link["relation"] for link in last["link"]}


@pytest.mark.parametrize(("params", "field"), [
    ({"foo": "bar"}, "foo"),
    ({"date": "yesterday"}, "date"),
    ({"date": "ge2024-13-01"}, "date"),
    ({"date": "ap2024-01-01"}, "date"),
    ({"date": "xx2024-01-01"}, "date"),
    ({"code:above": "glucose"}, "code:above"),
    ({"date:exact": "2024"}, "date:exact"),
    ({"_count": "-1"}, "_count"),
    ({"_count": "1001"}, "_count"),
    ({"_count": "many"}, "_count"),
    ({"_sort": "code"}, "_sort"),
    ({"_summary": "all"}, "_summary"),
    ({"_include": "Observation:performer"}, "_include"),
    ({"_revinclude": "Provenance:target"}, "_revinclude"),
    ({"_lastUpdated": "ap2024"}, "_lastUpdated"),
    ({"category:missing": "yes"}, "category:missing"),
    ({"code": "|"}, "code"),
    ({"patient": ""}, "patient"),
])
def test_unsupported_or_bad_parameters_are_400_outcomes(proxy: httpx.Client,
                                                        params: dict[str, str],
                                                        field: str) -> None:
    outcome = fhir_get(proxy, "/Observation", status=400, **params)
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["severity"] == "error"
    assert issue["diagnostics"].startswith(f"{field}: ")
    assert issue["expression"] == [field]


def test_parameters_of_other_types_are_refused(proxy: httpx.Client) -> None:
    outcome = fhir_get(proxy, "/Patient", status=400, date="2024")  # Patient has no date here
    assert "not a supported search parameter of Patient" in outcome["issue"][0]["diagnostics"]
    outcome = fhir_get(proxy, "/Coverage", status=400, code="x")
    assert outcome["issue"][0]["expression"] == ["code"]


def test_capability_statement(proxy: httpx.Client) -> None:
    statement = fhir_get(proxy, "/metadata")
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1" and statement["kind"] == "instance"
    assert statement["format"] == ["json"]
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    for name in ("Patient", "Observation", "Condition", "Encounter", "MedicationRequest",
                 "DiagnosticReport", "Procedure", "Immunization", "AllergyIntolerance",
                 "DocumentReference", "ImagingStudy"):
        assert {i["code"] for i in resources[name]["interaction"]} == {"read", "search-type"}
    observation = {p["name"]: p["type"] for p in resources["Observation"]["searchParam"]}
    assert observation["date"] == "date" and observation["code"] == "token"
    assert observation["patient"] == "reference" and "category" in observation


def test_read_only(proxy: httpx.Client) -> None:
    for method in ("POST", "PUT", "DELETE"):
        response = proxy.request(method, "/Observation", json={"resourceType": "Observation"})
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"
        assert response.json()["resourceType"] == "OperationOutcome"


def test_each_record_is_read_once_and_leaves_a_receipt(story: Story,
                                                       proxy: httpx.Client) -> None:
    searchset(proxy, "/Observation")
    searchset(proxy, "/Immunization")
    reads = [r for r in story.patient.reads() if r.provider == story.provider.address]
    granted = {bytes(e.record.record_id) for e in story.entries
               if str(e.source.scope_label) in GRANTED}
    assert sorted(bytes(r.record_id) for r in reads) == sorted(granted)  # once each


def test_after_a_revoke_nothing_of_that_scope_is_served(story: Story) -> None:
    stack = story.stack
    provider = stack.provider()  # a second provider, so the module's proxy is unaffected
    story.patient.grant(provider.address, list(GRANTED), expires_at=stack.now() + 3600)
    labs = ids(story.resources("Observation:laboratory"))
    shots = ids(story.resources("Immunization"))
    cache = GrantedCache(provider, ttl_s=0)
    with ProxyServer(cache, port=0) as server, httpx.Client(base_url=server.url,
                                                             timeout=60) as client:
        assert ids(searchset(client, "/Observation", patient=story.patient.address)) == labs
        one = sorted(labs)[0]
        fhir_get(client, f"/Observation/{one}")

        story.patient.revoke(provider.address, "Observation:laboratory")

        assert searchset(client, "/Observation") == []
        assert searchset(client, "/Observation", patient=story.patient.address) == []
        assert searchset(client, "/Observation", code=LOINC + "|" + "x") == []
        fhir_get(client, f"/Observation/{one}", status=404)
        assert ids(searchset(client, "/Immunization")) == shots  # the other scope stays
        assert all(r.resource_type != "Observation" for r in cache.snapshot().resources)
        assert cache.dropped == len(labs)

        story.patient.revoke(provider.address, "Immunization")
        assert searchset(client, "/Immunization") == []
        # no grant left: the patient is no longer one of the provider's patients
        assert searchset(client, "/Patient") == []


def test_granting_the_patient_scope_serves_the_real_patient(story: Story) -> None:
    stack = story.stack
    provider = stack.provider()
    story.patient.grant(provider.address, ["Patient", "Immunization"],
                        expires_at=stack.now() + 3600)
    cache = GrantedCache(provider, ttl_s=0)
    with ProxyServer(cache, port=0) as server, httpx.Client(base_url=server.url,
                                                             timeout=60) as client:
        uuid = story.synthea_patient_id
        patient = fhir_get(client, f"/Patient/{uuid}")
        original = next(r for r in story.resources("Patient"))
        assert patient["name"] == original["name"]
        synthea_id = original["identifier"][0]
        assert ids(searchset(client, "/Patient", identifier=(
            f"{synthea_id['system']}|{synthea_id['value']}"))) == {uuid}
        assert ids(searchset(client, "/Patient")) == {uuid}
        shots = searchset(client, "/Immunization", patient=f"Patient/{uuid}")
        assert ids(shots) == ids(story.resources("Immunization"))
        assert {s["patient"]["reference"] for s in shots} == {f"Patient/{uuid}"}
        assert ids(searchset(client, "/Immunization",
                             patient=story.patient.address)) == ids(shots)


def test_binds_loopback_only(story: Story) -> None:
    cache = GrantedCache(story.provider, ttl_s=60)
    server = ProxyServer(cache, port=0)
    try:
        assert server.bound_address == "127.0.0.1"
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        server._socket.close()
    for host in ("0.0.0.0", "192.168.1.10", "::", "localhost.example"):
        with pytest.raises(InputError) as refused:
            ProxyServer(cache, host=host, port=0)
        assert refused.value.field == "host"


def test_a_revoke_is_followed_within_the_refresh_interval(story: Story) -> None:
    """With ``ttl_s`` > 0 an answer may rely on the last check for that long, no longer."""
    stack = story.stack
    provider = stack.provider()
    story.patient.grant(provider.address, ["Immunization"], expires_at=stack.now() + 3600)
    now = [1000.0]
    cache = GrantedCache(provider, ttl_s=30, clock=lambda: now[0])
    shots = ids(story.resources("Immunization"))
    assert {r.id for r in cache.snapshot().of_type("Immunization")} == shots
    reads = cache.reads
    story.patient.revoke(provider.address, "Immunization")
    now[0] += 29  # within the interval: the last check stands (documented bound)
    assert {r.id for r in cache.snapshot().of_type("Immunization")} == shots
    assert cache.reads == reads  # and nothing was read again
    now[0] += 1
    assert cache.snapshot().of_type("Immunization") == []
    assert cache.dropped == len(shots)
