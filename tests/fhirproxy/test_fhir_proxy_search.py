"""The FHIR proxy's R4 search and HTTP features against the real stack, with a plain httpx
client: ``meta`` (versionId = record id, lastUpdated = registration), ETag / If-None-Match (a new
version changes both), ``_count=0``, ``_summary``, ``_elements``, ``_sort``, ``_include``,
``_lastUpdated``, the ``:exact`` / ``:contains`` / ``:text`` / ``:not`` / ``:missing``
modifiers, strict and lenient handling, 406 for XML, 405 with ``Allow``, ``POST _search``,
``Patient/$everything`` and the CapabilityStatement. Each answer is validated as R4; expected
ids come from the hand-made history in clinic.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import clinic
import httpx
import pytest
from clinic import Clinic
from local_stack import LocalStack

from kizuna.fhirproxy.search import SUBSETTED, parameters
from kizuna.storage.fhir.canonical import CONTENT_TYPE
from kizuna.storage.fhir.validate import validate

pytestmark = pytest.mark.anvil


def get(client: httpx.Client, path: str, status: int = 200, *,
        headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
        **params: Any) -> Any:
    response = client.get(path, params={**params, **(query or {})}, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    validate(body)
    return body


def matches(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])
            if e["search"]["mode"] == "match"]


def includes(bundle: dict[str, Any]) -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in bundle.get("entry", []) if e["search"]["mode"] == "include"]


def self_link(bundle: dict[str, Any]) -> str:
    return str(next(link["url"] for link in bundle["link"] if link["relation"] == "self"))


def test_meta_versions_etag_and_conditional_read(stack: LocalStack, clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    record = clinic_proxy.record_of(clinic.HEART)
    heart = get(client, f"/Observation/{clinic.HEART}")
    assert heart["meta"]["versionId"] == bytes(record.record_id).hex()
    registered = datetime.fromtimestamp(record.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert heart["meta"]["lastUpdated"] == registered
    # the source system's versionId / lastUpdated are replaced, its profile kept
    patient = get(client, f"/Patient/{clinic.PATIENT}")
    assert patient["meta"]["versionId"] != "7" and patient["meta"]["lastUpdated"] != \
        "2020-01-01T00:00:00Z"
    assert patient["meta"]["profile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]
    # every resource of a search carries meta too
    for entry in get(client, "/Observation")["entry"]:
        assert len(entry["resource"]["meta"]["versionId"]) == 64

    response = client.get(f"/Observation/{clinic.HEART}")
    etag = response.headers["etag"]
    assert etag == f'W/"{heart["meta"]["versionId"]}"'
    assert response.headers["last-modified"].endswith(" GMT")
    for header in (etag, heart["meta"]["versionId"], f'W/"x", {etag}', "*"):
        again = client.get(f"/Observation/{clinic.HEART}", headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b"", header
        assert again.headers["etag"] == etag
    changed = client.get(f"/Observation/{clinic.HEART}", headers={"If-None-Match": 'W/"1"'})
    assert changed.status_code == 200 and changed.json()["id"] == clinic.HEART

    # a new version (the patient replaces the record): new versionId, the old ETag is stale
    original = json.loads(next(e.source.content for e in clinic_proxy.entries
                               if str(e.source.fhir_id) == clinic.HEART))
    original["valueQuantity"] = {**original["valueQuantity"], "value": 72}
    new = clinic_proxy.patient.replace_record(
        record.record_id, json.dumps(original).encode(), label="Observation:vital-signs",
        content_type=CONTENT_TYPE)
    fresh = client.get(f"/Observation/{clinic.HEART}", headers={"If-None-Match": etag})
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["valueQuantity"]["value"] == 72
    assert fresh.json()["meta"]["versionId"] == bytes(new.record_id).hex()
    assert fresh.headers["etag"] != etag
    assert client.get(f"/Observation/{clinic.HEART}", headers={
        "If-None-Match": fresh.headers["etag"]}).status_code == 304


def test_count_zero_and_summary_count_give_the_total_only(clinic_proxy: Clinic) -> None:
    for params in ({"_count": "0"}, {"_summary": "count"}):
        body = get(clinic_proxy.client, "/Observation", query=params)
        assert body["total"] == len(clinic.OBSERVATIONS) and "entry" not in body
        assert "next" not in {link["relation"] for link in body["link"]}
    body = get(clinic_proxy.client, "/Observation", _count="0", category="vital-signs")
    assert body["total"] == len(clinic.VITAL_SIGNS)


def test_summary(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    full = get(client, f"/Patient/{clinic.PATIENT}")
    assert "text" in full and "maritalStatus" in full and "meta" in full
    assert SUBSETTED not in full["meta"].get("tag", [])
    assert get(client, f"/Patient/{clinic.PATIENT}", _summary="false") == full

    summary = get(client, "/Patient", _summary="true")["entry"][0]["resource"]
    assert summary["name"] == full["name"] and summary["gender"] == "male"
    assert "maritalStatus" not in summary and "text" not in summary  # not summary elements
    assert SUBSETTED in summary["meta"]["tag"]
    assert summary["meta"]["profile"] == full["meta"]["profile"]

    text = get(client, f"/Patient/{clinic.PATIENT}", _summary="text")
    assert set(text) == {"resourceType", "id", "meta", "text"}
    data = get(client, f"/Patient/{clinic.PATIENT}", _summary="data")
    assert "text" not in data and data["maritalStatus"] == full["maritalStatus"]
    assert SUBSETTED in data["meta"]["tag"]

    # mandatory elements stay (Observation.status and .code are 1..1)
    obs = get(client, "/Observation", _summary="text", _id=clinic.HEART)["entry"][0]["resource"]
    assert set(obs) == {"resourceType", "id", "meta", "status", "code"}
    obs = get(client, "/Observation", _summary="true", _id=clinic.HEART)["entry"][0]["resource"]
    assert "valueQuantity" in obs and "interpretation" not in obs

    for bad in ("maybe", "TRUE"):
        outcome = get(client, "/Patient", status=400, _summary=bad)
        assert outcome["issue"][0]["expression"] == ["_summary"]
    get(client, f"/Patient/{clinic.PATIENT}", status=400, _summary="count")


def test_elements(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    patient = get(client, "/Patient", _elements="gender")["entry"][0]["resource"]
    assert set(patient) == {"resourceType", "id", "meta", "gender"}
    assert SUBSETTED in patient["meta"]["tag"]
    obs = get(client, f"/Observation/{clinic.HEART}", _elements="value,subject")
    assert set(obs) == {"resourceType", "id", "meta", "status", "code", "valueQuantity",
                        "subject"}
    outcome = get(client, "/Patient", status=400, _elements="gender name")
    assert outcome["issue"][0]["expression"] == ["_elements"]
    outcome = get(client, "/Patient", status=400, _elements="gender", _summary="true")
    assert outcome["issue"][0]["expression"] == ["_elements"]


def test_sort(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    dated, undated = clinic.DATED, [clinic.NO_DATE]
    # a resource without the value comes last, ascending and descending
    assert matches(get(client, "/Observation", _sort="date")) == dated + undated
    assert matches(get(client, "/Observation", _sort="-date")) == dated[::-1] + undated
    everything = clinic.OBSERVATIONS
    assert matches(get(client, "/Observation", _sort="_id")) == sorted(everything)
    assert matches(get(client, "/Observation", _sort="-_id")) == sorted(everything,
                                                                         reverse=True)
    # paging keeps the order, and the links keep the _sort
    first = get(client, "/Observation", _sort="-date", _count="2")
    assert matches(first) == dated[::-1][:2]
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert "_sort=-date" in following
    assert matches(httpx.get(following).json()) == dated[::-1][2:4]
    # two keys: ties of the first are ordered by the second
    served = [e["resource"] for e in get(client, "/Observation",
                                         _sort="-_lastUpdated,date")["entry"]]
    keys = [(-datetime.fromisoformat(r["meta"]["lastUpdated"]).timestamp(),
             clinic.OBSERVATIONS.index(r["id"])) for r in served]
    assert keys == sorted(keys)
    assert matches(get(client, "/Patient", _sort="family,given")) == [clinic.PATIENT]
    for bad in ("code", "category,-date", "nonsense", "-"):  # tokens are not sortable here
        outcome = get(client, "/Observation", status=400, _sort=bad)
        assert outcome["issue"][0]["expression"] == ["_sort"]
        assert "sortable: _id, _lastUpdated" in outcome["issue"][0]["diagnostics"]
    assert matches(get(client, "/MedicationRequest", _sort="-date")) == [clinic.BY_CODE,
                                                                         clinic.BY_REFERENCE]


def test_include(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    body = get(client, "/MedicationRequest", _include="MedicationRequest:medication")
    assert sorted(matches(body)) == sorted([clinic.BY_REFERENCE, clinic.BY_CODE])
    assert includes(body) == [f"Medication/{clinic.MEDICATION}"]
    assert body["total"] == 2  # included resources are not counted
    medication = next(e for e in body["entry"] if e["search"]["mode"] == "include")
    assert medication["fullUrl"].endswith(f"/Medication/{clinic.MEDICATION}")
    assert medication["resource"]["code"]["coding"][0]["code"] == "197361"

    targeted = get(client, "/MedicationRequest", _include="MedicationRequest:medication:Medication")
    assert includes(targeted) == [f"Medication/{clinic.MEDICATION}"]
    other = get(client, "/MedicationRequest", _include="MedicationRequest:medication:Substance")
    assert includes(other) == []
    # the subject once, however many matches point at it; two includes at once
    body = get(client, "/Observation", _include="Observation:subject")
    assert len(matches(body)) == len(clinic.OBSERVATIONS)
    assert includes(body) == [f"Patient/{clinic.PATIENT}"]
    both = client.get("/MedicationRequest", params=[
        ("_include", "MedicationRequest:medication"), ("_include", "MedicationRequest:patient")])
    assert sorted(includes(both.json())) == sorted([f"Medication/{clinic.MEDICATION}",
                                                    f"Patient/{clinic.PATIENT}"])
    # per page: the page without the referencing match includes nothing
    page = get(client, "/MedicationRequest", _include="MedicationRequest:medication",
               _id=clinic.BY_CODE)
    assert includes(page) == []
    # _summary applies to included resources too
    summary = get(client, "/Observation", _include="Observation:subject", _summary="true")
    patient = next(e["resource"] for e in summary["entry"] if e["search"]["mode"] == "include")
    assert "maritalStatus" not in patient
    for bad in ("Observation:performer", "Patient:subject", "*", "Observation",
                "Observation:subject:lower"):
        outcome = get(client, "/Observation", status=400, _include=bad)
        assert outcome["issue"][0]["expression"] == ["_include"]
    outcome = get(client, "/Observation", status=400,
                  query={"_include:iterate": "Observation:subject"})
    assert outcome["issue"][0]["expression"] == ["_include:iterate"]


def test_last_updated(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    stamps = sorted(datetime.fromtimestamp(e.record.created_at, UTC) for e in clinic_proxy.entries)
    first = stamps[0].strftime("%Y-%m-%dT%H:%M:%SZ")
    everything = set(matches(get(client, "/Observation", _count="100")))
    assert set(matches(get(client, "/Observation", _lastUpdated=f"ge{first}"))) == everything
    assert matches(get(client, "/Observation", _lastUpdated=f"lt{first}")) == []
    assert matches(get(client, "/Observation", _lastUpdated="gt2999")) == []
    assert set(matches(get(client, "/Observation",
                           _lastUpdated=f"eq{stamps[0]:%Y}"))) >= everything - {clinic.HEART}
    outcome = get(client, "/Observation", status=400, _lastUpdated="yesterday")
    assert outcome["issue"][0]["expression"] == ["_lastUpdated"]
    outcome = get(client, "/Observation", status=400, query={"_lastUpdated:missing": "true"})
    assert outcome["issue"][0]["expression"] == ["_lastUpdated:missing"]


def test_string_modifiers(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    found = {clinic.PATIENT}
    for params, expected in [
        ({"name": "jose"}, found),          # starts-with, case- and accent-insensitive
        ({"name": "MUL"}, found),
        ({"name": "ller"}, set()),          # not a prefix
        ({"name:contains": "ller"}, found),
        ({"name:exact": "José"}, found),
        ({"name:exact": "jose"}, set()),    # exact: case and accents count
        ({"family:exact": "Müller"}, found),
        ({"family": "ana"}, set()),         # Ana is a given name
        ({"given": "ana"}, found),
        ({"given:exact": "Ana,Bob"}, found),
        ({"name:missing": "false"}, found),
        ({"gender": "male"}, found),
        ({"gender:not": "male"}, set()),
    ]:
        assert set(matches(get(client, "/Patient", query=params))) == expected, params
    outcome = get(client, "/Patient", status=400, query={"name:text": "jose"})
    assert "not supported on name" in outcome["issue"][0]["diagnostics"]


def test_token_modifiers(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    all_obs = set(clinic.OBSERVATIONS)
    weights = {clinic.WEIGHT_OLD, clinic.WEIGHT_NEW}
    for params, expected in [
        ({"code:text": "body w"}, weights),                 # Coding.display, starts-with
        ({"code:text": "resume"}, {clinic.WEIGHT_NEW}),     # CodeableConcept.text, no accents
        ({"code:text": "weight"}, set()),
        ({"code:text": "heart,body t"}, {clinic.HEART, clinic.PERIOD}),
        ({"code:not": f"{clinic.LOINC}|29463-7"}, all_obs - weights),
        ({"category:missing": "true"}, {clinic.NO_CATEGORY}),
        ({"category:missing": "false"}, all_obs - {clinic.NO_CATEGORY}),
        ({"date:missing": "false"}, all_obs - {clinic.NO_DATE}),
        ({"date:missing": "true"}, {clinic.NO_DATE}),
        ({"encounter:missing": "true"}, all_obs),
        ({"category:not": "vital-signs"}, {clinic.NO_CATEGORY}),
    ]:
        assert set(matches(get(client, "/Observation", query=params))) == expected, params
    for name, value in [("code:missing", "maybe"), ("code:exact", "x"), ("date:exact", "2020"),
                        ("code:above", "x"), ("_id:missing", "true")]:
        outcome = get(client, "/Observation", status=400, query={name: value})
        assert outcome["issue"][0]["expression"] == [name], name


def test_strict_and_lenient_handling(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    outcome = get(client, "/Observation", status=400, foo="bar", category="vital-signs")
    assert outcome["issue"][0]["expression"] == ["foo"]
    strict = get(client, "/Observation", status=400, headers={"Prefer": "handling=strict"},
                 foo="bar")
    assert strict["issue"][0]["expression"] == ["foo"]
    lenient = get(client, "/Observation", headers={"Prefer": "handling=lenient"}, foo="bar",
                  query={"code:above": "x", "category": "vital-signs"})
    # the category applied, foo and code:above ignored
    assert lenient["total"] == len(clinic.VITAL_SIGNS)
    link = self_link(lenient)
    assert "category=vital-signs" in link and "foo" not in link and "above" not in link
    # a value that does not parse is an error either way
    get(client, "/Observation", status=400, headers={"Prefer": "handling=lenient"},
        date="yesterday")


def test_xml_is_406(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    for path in ("/Observation", f"/Observation/{clinic.HEART}", "/metadata",
                 f"/Patient/{clinic.PATIENT}/$everything"):
        for headers, params in [({"Accept": "application/fhir+xml"}, {}),
                                ({"Accept": "application/xml, text/xml"}, {}),
                                ({}, {"_format": "xml"}),
                                ({}, {"_format": "application/fhir+xml"}),
                                ({"Accept": "application/fhir+json"}, {"_format": "xml"})]:
            response = client.get(path, headers=headers, params=params)
            assert response.status_code == 406, (path, headers, params)
            body = response.json()
            validate(body)
            assert body["resourceType"] == "OperationOutcome"
            assert body["issue"][0]["code"] == "not-supported"
        for headers, params in [({"Accept": "application/fhir+xml;q=0.9, "
                                            "application/fhir+json;q=0.5"}, {}),
                                ({"Accept": "*/*"}, {}), ({"Accept": "application/json"}, {}),
                                ({"Accept": "application/xml"}, {"_format": "json"}),
                                ({}, {"_format": "application/fhir+json"})]:
            response = client.get(path, headers=headers, params=params)
            assert response.status_code == 200, (path, headers, params, response.text)
    refused = client.get("/Observation", headers={"Accept": "application/fhir+json;q=0"})
    assert refused.status_code == 406


def test_405_answers_say_what_is_allowed(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    for method, path, allow in [("POST", "/Observation", "GET, HEAD"),
                                ("DELETE", "/Observation", "GET, HEAD"),
                                ("PUT", f"/Observation/{clinic.HEART}", "GET, HEAD"),
                                ("PATCH", f"/Observation/{clinic.HEART}", "GET, HEAD"),
                                ("DELETE", "/metadata", "GET, HEAD"),
                                ("GET", "/Observation/_search", "POST"),
                                ("PUT", "/Observation/_search", "POST"),
                                ("POST", f"/Patient/{clinic.PATIENT}/$everything",
                                 "GET, HEAD")]:
        response = client.request(method, path, json={"resourceType": "Observation"})
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allow, (method, path)
        body = response.json()
        validate(body)
        assert body["resourceType"] == "OperationOutcome"


def test_post_search(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    get_answer = get(client, "/Observation", category="vital-signs", _sort="-date")
    post = client.post("/Observation/_search", data={"category": "vital-signs",
                                                     "_sort": "-date"})
    assert post.status_code == 200, post.text
    validate(post.json())
    assert matches(post.json()) == matches(get_answer)
    assert post.json()["total"] == len(clinic.VITAL_SIGNS)
    # parameters in the URL and in the body are one search
    mixed = client.post("/Observation/_search?_sort=-date&_count=2",
                        data={"category": "vital-signs"})
    assert matches(mixed.json()) == matches(get_answer)[:2]
    assert "category=vital-signs" in self_link(mixed.json())  # the self link is a GET
    bad = client.post("/Observation/_search", data={"foo": "bar"})
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["foo"]
    wrong_type = client.post("/Observation/_search", json={"category": "vital-signs"})
    assert wrong_type.status_code == 415
    assert wrong_type.json()["resourceType"] == "OperationOutcome"
    empty = client.post("/Observation/_search", content=b"",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert empty.status_code == 200 and empty.json()["total"] == len(clinic.OBSERVATIONS)


def test_everything(clinic_proxy: Clinic) -> None:
    client = clinic_proxy.client
    body = get(client, f"/Patient/{clinic.PATIENT}/$everything", _count="100")
    ids = matches(body)
    assert ids[0] == clinic.PATIENT  # the Patient first
    expected = {str(e.source.fhir_id) for e in clinic_proxy.entries}
    assert set(ids) == expected and body["total"] == len(expected)
    # the patient's address names the same compartment
    by_address = get(client, f"/Patient/{clinic_proxy.patient.address}/$everything", status=404)
    assert by_address["resourceType"] == "OperationOutcome"  # their Patient id is the UUID
    only = get(client, f"/Patient/{clinic.PATIENT}/$everything",
               _type="Observation,Medication")
    assert {e["resource"]["resourceType"] for e in only["entry"]} == {"Observation",
                                                                       "Medication"}
    assert get(client, f"/Patient/{clinic.PATIENT}/$everything",
               _since="2999-01-01T00:00:00Z")["total"] == 0
    page = get(client, f"/Patient/{clinic.PATIENT}/$everything", _count="3")
    assert len(page["entry"]) == 3
    following = next(link["url"] for link in page["link"] if link["relation"] == "next")
    assert "/Patient/" in following and "$everything" in following
    rest = httpx.get(following).json()
    assert matches(rest) == ids[3:6]
    get(client, "/Patient/nobody/$everything", status=404)
    outcome = get(client, f"/Patient/{clinic.PATIENT}/$everything", status=400, start="2020")
    assert outcome["issue"][0]["expression"] == ["start"]
    outcome = get(client, f"/Patient/{clinic.PATIENT}/$everything", status=400, _type="Nope")
    assert outcome["issue"][0]["expression"] == ["_type"]


def test_capability_statement_lists_exactly_what_is_supported(clinic_proxy: Clinic) -> None:
    statement = get(clinic_proxy.client, "/metadata")
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    observation = resources["Observation"]
    assert observation["conditionalRead"] == "not-match"
    assert observation["versioning"] == "versioned" and observation["readHistory"] is False
    assert observation["searchInclude"] == ["Observation:patient", "Observation:subject",
                                            "Observation:encounter"]
    assert resources["MedicationRequest"]["searchInclude"] == [
        "MedicationRequest:patient", "MedicationRequest:subject",
        "MedicationRequest:encounter", "MedicationRequest:medication"]
    assert resources["Patient"]["operation"] == [{
        "name": "everything",
        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]
    assert "operation" not in observation
    names = {p["name"] for p in observation["searchParam"]}
    assert names == {*parameters("Observation"), "_count", "_offset", "_format", "_sort",
                     "_summary", "_elements", "_include"}
    docs = {p["name"]: p.get("documentation", "") for p in observation["searchParam"]}
    assert ":text" in docs["code"] and ":missing" in docs["date"]
    patient = {p["name"] for p in resources["Patient"]["searchParam"]}
    assert {"name", "family", "given", "gender"} <= patient and "date" not in patient
    # each search parameter listed is accepted by a search (and nothing unlisted is)
    client = clinic_proxy.client
    samples = {"token": "x", "date": "2020", "reference": "Patient/x", "string": "x",
               "number": "1"}
    for resource in statement["rest"][0]["resource"]:
        for param in resource["searchParam"]:
            value = {"_sort": "_id", "_summary": "true", "_elements": "id",
                     "_include": (resource.get("searchInclude") or ["-"])[0],
                     "_format": "json"}.get(param["name"], samples[param["type"]])
            if param["name"] == "_include" and value == "-":
                continue
            response = client.get(f"/{resource['type']}", params={param["name"]: value})
            assert response.status_code == 200, (resource["type"], param, response.text)
