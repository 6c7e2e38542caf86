"""The International Patient Summary (kizuna/sharing/ips.py) of a real Synthea patient: every
section the IG requires is present and the document passes FHIR and IPS checks; empty sections
say why; the checks refuse what the IG forbids; the PDF carries the patient's problems as text.
Then the same summary built on the patient's side over the real API (records decrypted there)."""

from __future__ import annotations

import copy
import io
from typing import Any

import pypdf
import pytest

from kizuna.client.patient import PatientClient
from kizuna.errors import FhirValidationError, InputError
from kizuna.sharing.ips import (
    REQUIRED_CODES,
    SECTIONS,
    build_ips,
    check_ips,
    concept_text,
    ips_issues,
    ips_pdf,
)
from kizuna.sharing.share import own_ips


def _composition(bundle: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = bundle["entry"][0]["resource"]
    return first


def _section(bundle: dict[str, Any], code: str) -> dict[str, Any]:
    (found,) = [s for s in _composition(bundle)["section"]
                if s["code"]["coding"][0]["code"] == code]
    return found


def _active_problems(resources: list[dict[str, Any]]) -> list[str]:
    return sorted({concept_text(r["code"]) for r in resources
                   if r["resourceType"] == "Condition"
                   and r["clinicalStatus"]["coding"][0]["code"] == "active"})


def test_the_ips_of_a_synthea_patient_has_every_required_section_and_validates(
        synthea_resources: list[dict[str, Any]]) -> None:
    bundle = build_ips(synthea_resources)
    assert bundle["type"] == "document" and bundle["identifier"]["value"]
    composition = _composition(bundle)
    assert composition["resourceType"] == "Composition"
    assert composition["type"]["coding"][0]["code"] == "60591-5"
    codes = {s["code"]["coding"][0]["code"] for s in composition["section"]}
    assert codes >= REQUIRED_CODES and codes == {s.code for s in SECTIONS}
    assert ips_issues(bundle) == []
    check_ips(bundle)  # FHIR R4 validation too
    # what the summary lists is what the records hold: every active problem, by name
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    listed = sorted({concept_text(by_url[e["reference"]]["code"])
                     for e in _section(bundle, "11450-4").get("entry", [])})
    assert listed == _active_problems(synthea_resources) != []
    # every entry resolves; the Patient is there once; subject points at it
    patients = [r for r in by_url.values() if r["resourceType"] == "Patient"]
    assert len(patients) == 1
    assert by_url[composition["subject"]["reference"]] is patients[0]


def test_a_section_with_nothing_says_so_with_an_empty_reason() -> None:
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Sato",
                                                                 "given": ["Aiko"]}]}
    bundle = build_ips([patient])
    for section in _composition(bundle)["section"]:
        assert "entry" not in section
        assert section["emptyReason"]["coding"][0]["code"] == "unavailable"
        assert "No " in section["text"]["div"]


def test_without_a_patient_there_is_no_summary() -> None:
    with pytest.raises(InputError, match="Patient"):
        build_ips([{"resourceType": "Condition", "id": "c1"}])


def test_the_checks_refuse_what_the_ig_forbids(synthea_resources: list[dict[str, Any]]) -> None:
    good = build_ips(synthea_resources)

    no_allergies = copy.deepcopy(good)
    _composition(no_allergies)["section"] = [
        s for s in _composition(no_allergies)["section"]
        if s["code"]["coding"][0]["code"] != "48765-2"]
    with pytest.raises(FhirValidationError) as caught:
        check_ips(no_allergies)
    assert any("48765-2" in reason for _, reason in caught.value.issues)

    both = copy.deepcopy(good)
    problems = _section(both, "11450-4")
    problems["emptyReason"] = {"text": "none"}
    assert any("not both" in reason for _, reason in ips_issues(both))

    dangling = copy.deepcopy(good)
    _section(dangling, "11450-4")["entry"].append({"reference": "urn:uuid:nowhere"})
    assert any("does not resolve" in reason for _, reason in ips_issues(dangling))

    wrong_type = copy.deepcopy(good)
    immunization = _section(wrong_type, "11369-6")["entry"][0]
    _section(wrong_type, "11450-4")["entry"].append(immunization)
    assert any("not allowed in the Problems" in r for _, r in ips_issues(wrong_type))

    not_document = copy.deepcopy(good)
    not_document["type"] = "collection"
    assert ("Bundle.type", "an IPS is a Bundle of type document") in ips_issues(not_document)


def test_the_pdf_has_the_patients_problems_as_text(
        synthea_resources: list[dict[str, Any]]) -> None:
    pdf = ips_pdf(build_ips(synthea_resources))
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    flat = " ".join(text.split())
    for problem in _active_problems(synthea_resources):
        assert " ".join(problem.split()) in flat
    for section in SECTIONS:
        assert section.title in flat


@pytest.mark.anvil
def test_the_patient_builds_the_summary_from_records_decrypted_on_their_side(
        synthea_patient_client: PatientClient,
        synthea_resources: list[dict[str, Any]]) -> None:
    bundle = own_ips(synthea_patient_client)
    check_ips(bundle)
    direct = build_ips(synthea_resources)
    for section in SECTIONS:
        assert (len(_section(bundle, section.code).get("entry", []))
                == len(_section(direct, section.code).get("entry", []))), section.title
