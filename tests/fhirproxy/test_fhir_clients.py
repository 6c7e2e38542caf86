"""Three independent FHIR clients against the real proxy, through every supported parameter:
fhirclient (SMART on FHIR's Python client, PyPI), fhirpy (PyPI) and fhir-kit-client (npm, run
with Node). Each uses its own query building, paging and parsing; the expectations are the ids
of clinic.py's hand-made history, so a client that is handed the wrong answer (or cannot read
the right one) fails here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import clinic
import pytest
import requests
from clinic import Clinic
from fhirclient import client as smart
from fhirclient.models.bundle import Bundle
from fhirclient.models.medicationrequest import MedicationRequest
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]
WEIGHT_CODE = "29463-7"
WEIGHTS = {clinic.WEIGHT_OLD, clinic.WEIGHT_NEW}
MEDICATION = f"Medication/{clinic.MEDICATION}"
# the clinical dates: 2019, 2020, 2021 (a period), 2022, 2024; one without a date
SINCE_2022 = [clinic.HEART, clinic.WEIGHT_NEW]
VITALS_NEWEST_FIRST = [o for o in clinic.DATED[::-1] if o != clinic.NO_CATEGORY] + \
    [clinic.NO_DATE]


def _ids(resources: list[Any]) -> list[str]:
    return [r.id for r in resources]


def test_fhirclient(clinic_proxy: Clinic) -> None:
    server = smart.FHIRClient(settings={"app_id": "kizuna-test",
                                        "api_base": clinic_proxy.url + "/"}).server

    def where(model: Any, struct: dict[str, Any]) -> list[str]:
        return _ids(list(model.where(struct=struct).perform_resources_iter(server)))

    def bundle(model: Any, struct: dict[str, Any]) -> Bundle:
        found: Bundle = next(model.where(struct=struct).perform_iter(server))
        return found

    assert where(Observation, {"category": "vital-signs", "_sort": "-date",
                               "_count": "50"}) == VITALS_NEWEST_FIRST
    assert set(where(Observation, {"patient": clinic.PATIENT})) == set(clinic.OBSERVATIONS)
    assert set(where(Observation, {"code": f"{clinic.LOINC}|{WEIGHT_CODE}"})) == WEIGHTS
    assert where(Observation, {"date": "ge2022-01-01", "_sort": "date"}) == SINCE_2022
    # perform_resources follows the next links (fhirclient's own paging)
    assert where(Observation, {"_sort": "date", "_count": "2"}) == [*clinic.DATED,
                                                                    clinic.NO_DATE]
    counted = bundle(Observation, {"_count": "0"})
    assert counted.total == len(clinic.OBSERVATIONS) and not counted.entry
    assert bundle(Observation, {"_summary": "count"}).total == len(clinic.OBSERVATIONS)
    summary = next(Patient.where(struct={"_summary": "true"}).perform_resources_iter(server))
    assert summary.name[0].family == "Müller" and summary.maritalStatus is None
    assert [t.code for t in summary.meta.tag] == ["SUBSETTED"]
    elements = next(Patient.where(struct={"_elements": "gender"}).perform_resources_iter(server))
    assert elements.gender == "male" and elements.name is None
    included = bundle(MedicationRequest, {"_include": "MedicationRequest:medication"})
    assert [(e.search.mode, e.resource.resource_type) for e in included.entry
            if e.search.mode == "include"] == [("include", "Medication")]
    subjects = next(Observation.where(struct={}).include("subject").perform_iter(server))
    assert [e.resource.id for e in subjects.entry if e.search.mode == "include"] == \
        [clinic.PATIENT]
    assert where(Observation, {"_lastUpdated": "gt2999-01-01"}) == []
    assert where(Patient, {"name": {"$exact": "José"}}) == [clinic.PATIENT]
    assert where(Patient, {"name": {"$exact": "jose"}}) == []
    assert where(Patient, {"name:contains": "ller"}) == [clinic.PATIENT]
    assert where(Observation, {"code": {"$text": "resume"}}) == [clinic.WEIGHT_NEW]
    assert where(Observation, {"category": {"$missing": "true"}}) == [clinic.NO_CATEGORY]
    assert set(where(Observation, {"code:not": f"{clinic.LOINC}|{WEIGHT_CODE}"})) == \
        set(clinic.OBSERVATIONS) - WEIGHTS

    heart = Observation.read(clinic.HEART, server)
    assert heart.meta.versionId and heart.meta.lastUpdated is not None
    etag = f'W/"{heart.meta.versionId}"'
    assert server.request_data(f"Observation/{clinic.HEART}",
                               headers={"If-None-Match": etag}) == b""  # 304: no body
    assert json.loads(server.request_data(f"Observation/{clinic.HEART}",
                                          headers={"If-None-Match": 'W/"0"'}))["id"] == \
        clinic.HEART
    everything = server.request_json(f"Patient/{clinic.PATIENT}/$everything")
    assert everything["entry"][0]["resource"]["id"] == clinic.PATIENT
    posted = server.post_as_form(clinic_proxy.url + "/Observation/_search",
                                 {"category": "vital-signs", "_sort": "-date"})
    assert [e["resource"]["id"] for e in posted.json()["entry"]] == VITALS_NEWEST_FIRST
    with pytest.raises(requests.HTTPError) as refused:
        server.request_data(f"Observation/{clinic.HEART}",
                            headers={"Accept": "application/fhir+xml"})
    assert refused.value.response.status_code == 406
    with pytest.raises(requests.HTTPError) as unknown:
        next(Observation.where(struct={"foo": "bar"}).perform_iter(server))
    assert unknown.value.response.status_code == 400


def test_fhirpy(clinic_proxy: Clinic) -> None:
    client = SyncFHIRClient(clinic_proxy.url)
    observations = client.resources("Observation")

    def ids(searchset: Any) -> list[str]:
        return [r.id for r in searchset.fetch_all()]

    vitals = observations.search(category="vital-signs").sort("-date").limit(50)
    assert ids(vitals) == VITALS_NEWEST_FIRST
    assert set(ids(observations.search(patient=f"Patient/{clinic.PATIENT}"))) == \
        set(clinic.OBSERVATIONS)
    assert set(ids(observations.search(code=f"{clinic.LOINC}|{WEIGHT_CODE}"))) == WEIGHTS
    assert ids(observations.search(date="ge2022-01-01").sort("date")) == SINCE_2022
    assert ids(observations.sort("date").limit(2)) == [*clinic.DATED, clinic.NO_DATE]
    raw = observations.limit(0).fetch_raw()
    assert raw["total"] == len(clinic.OBSERVATIONS) and "entry" not in raw
    assert observations.search(_summary="count").fetch_raw()["total"] == \
        len(clinic.OBSERVATIONS)
    summary = client.resources("Patient").search(_summary="true").fetch()[0]
    assert summary["name"][0]["family"] == "Müller" and "maritalStatus" not in summary
    only = client.resources("Patient").elements("gender").fetch()[0]
    assert only["gender"] == "male" and "name" not in only
    included = client.resources("MedicationRequest").include(
        "MedicationRequest", "medication").fetch_raw()
    assert [f"{e.resource.resourceType}/{e.resource.id}" for e in included.entry
            if e.search.mode == "include"] == [MEDICATION]
    assert ids(observations.search(_lastUpdated="gt2999-01-01")) == []
    patients = client.resources("Patient")
    assert ids(patients.search(name__exact="José")) == [clinic.PATIENT]
    assert ids(patients.search(name__exact="jose")) == []
    assert ids(patients.search(name__contains="ller")) == [clinic.PATIENT]
    assert ids(observations.search(code__text="resume")) == [clinic.WEIGHT_NEW]
    assert ids(observations.search(category__missing=True)) == [clinic.NO_CATEGORY]
    assert set(ids(observations.search(code__not=f"{clinic.LOINC}|{WEIGHT_CODE}"))) == \
        set(clinic.OBSERVATIONS) - WEIGHTS

    heart = client.reference("Observation", clinic.HEART).to_resource()
    assert len(heart["meta"]["versionId"]) == 64
    everything = client.reference("Patient", clinic.PATIENT).execute("$everything",
                                                                     method="get")
    assert everything["entry"][0]["resource"]["id"] == clinic.PATIENT
    # fhirpy's count() adds Aidbox's _totalMethod: refused strictly, ignored when lenient
    with pytest.raises(OperationOutcome):
        observations.count()
    lenient = SyncFHIRClient(clinic_proxy.url, extra_headers={"Prefer": "handling=lenient"})
    assert lenient.resources("Observation").count() == len(clinic.OBSERVATIONS)
    with pytest.raises(OperationOutcome):
        observations.search(foo="bar").fetch()


def _node() -> str:
    found = shutil.which("node", path=f"{ROOT / '.venv' / 'bin'}{os.pathsep}"
                                      f"{os.environ['PATH']}")
    if found is None:
        pytest.fail("node is not installed (source scripts/bootstrap.sh)")
    if not (ROOT / "node_modules" / "fhir-kit-client").is_dir():
        pytest.fail("fhir-kit-client is not installed (npm install at the repository root)")
    return found


def test_fhir_kit_client(clinic_proxy: Clinic) -> None:
    ids = {"patient": clinic.PATIENT, "heart": clinic.HEART, "weightCode": WEIGHT_CODE}
    done = subprocess.run([_node(), str(Path(__file__).with_name("fhir_kit_client.mjs")),
                           clinic_proxy.url, json.dumps(ids)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"Observation", "Patient", "MedicationRequest"} <= set(out["capability"])
    assert out["vitals"] == VITALS_NEWEST_FIRST
    assert out["byPatient"] == [*clinic.DATED, clinic.NO_DATE]
    assert set(out["code"]) == WEIGHTS
    assert out["date"] == SINCE_2022
    assert out["countZero"]["total"] == len(clinic.OBSERVATIONS)
    assert "entry" not in out["countZero"]
    assert out["summaryCount"] == len(clinic.OBSERVATIONS)
    assert "maritalStatus" not in out["summaryTrue"] and out["summaryTrue"]["gender"] == "male"
    assert set(out["elements"]) == {"resourceType", "id", "meta", "gender"}
    assert out["include"] == [MEDICATION]
    assert out["lastUpdated"] == []
    assert out["exact"] == [clinic.PATIENT] and out["exactWrongCase"] == []
    assert out["text"] == [clinic.WEIGHT_NEW]
    assert out["missing"] == [clinic.NO_CATEGORY]
    assert out["paged"] == [*clinic.DATED, clinic.NO_DATE]
    assert out["postSearch"] == VITALS_NEWEST_FIRST
    assert out["etag"] == f'W/"{out["readMeta"]["versionId"]}"'
    assert out["conditional"] == 304
    assert out["everything"][0] == clinic.PATIENT
    assert set(out["everything"]) == {str(e.source.fhir_id) for e in clinic_proxy.entries}
    assert out["xml"] == 406 and out["unknown"] == 400
    assert out["create"] == 405 and out["missingRead"] == 404
