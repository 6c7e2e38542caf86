"""Taking part in a study from the page (issue 16), in the real page (Chromium, ``kizuna up
--demo``, the test wallet), with the researcher on the command line.

Desktop: the demo's verified dr-sato registers a study with ``kizuna researcher study create``;
a patient whose records are a Synthea life (imported by the Python pipeline) opens Research,
chooses all but one of the parts the study asks for, sees the copy the page made (resources per
type), and takes part: the page uploads the copy, grants it and records the consent, the
wallet showing each purpose. Then:

* the copy's records, read back by the Python client, are byte for byte what Python's own
  ``consent_to_study`` would have made of the same records (canonical JSON), under the record
  ids it would have given them;
* ``kizuna researcher export`` (the researcher's read path, with receipts) gets exactly that
  copy, and the direct-identifier scanner of tests/research/test_research_deidentify.py finds
  no name, identifier, address, phone or birth date of the input in it (while it finds them in
  the input written the same way);
* withdrawing in the page stops further reads: the export gets nothing, a direct read is denied.

Phone: the study also asks for imaging. A DICOM file the page does not read (big endian) among
the chosen parts is refused by name, pointing to the command line; without it, a real DICOM file
(patient name, ID, birth date, institution, UIDs, private tags: a file of
tests/vectors/deidentify_dicom.json) is de-identified in the page with the heart rates. The
relayed consent's request fails once on the way: the page says so, the chain has no consent, and
"Try again" finishes without registering any record twice. The page's DICOM copy is byte for
byte Python's (``consent_to_study``'s), ``kizuna researcher export`` writes it, and the
identifier scanner finds none of the input file's identifiers in the export (while it finds them
in the input). Screenshots, no overflow, axe clean at each step.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from browser import Session, check_layout
from eth_utils.address import to_checksum_address
from injected_wallet import TestWallet
from playwright.sync_api import Locator, Page, Route, expect
from synthea_data import small_bundle, synthea_patient
from test_web_ips import _import, _patient
from web_harness import Web

from kizuna.errors import AccessDenied
from kizuna.research.export import write_bulk_ndjson
from kizuna.storage.fhir.canonical import canonical_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "research"))
from test_research_deidentify import direct_identifiers, scan  # the one scanner

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT = 180_000
SATO = "dr-sato"
CHOSEN = ["Patient", "Observation:vital-signs", "Observation:laboratory",
          "Condition:encounter-diagnosis", "DocumentReference", "Claim", "Condition"]
"""What the patient shares: clinical notes (DocumentReference) and claims carry names and
identifiers; ``Condition`` (of which a Synthea patient has no record: their conditions are
``Condition:encounter-diagnosis``) shows that an empty part is named."""


def _register(web: Web, purpose: str, scopes: list[str]) -> str:
    args = ["researcher", "study", "create", "--purpose", purpose, "--ends", "90d",
            "--key", SATO, "--json"]
    for scope in scopes:
        args += ["--scope", scope]
    done = web.stack.kizuna(*args)
    assert done.code == 0, done.err
    study: str = done.json()["study"]
    return study


def _export(web: Web, study: str, out: Path) -> dict[str, Any]:
    """``kizuna researcher export STUDY -o OUT --key dr-sato``'s call, in this process: the
    counts it reports."""
    from kizuna.research.studies import export_study, parse_study_id

    with web.stack.provider(SATO) as sato:
        return {"counts": export_study(sato, parse_study_id(study), out)}


def _open_research(web: Web, wallet: TestWallet, device: str) -> Session:
    session = web.open([wallet], device=device)
    page = session.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(wallet.address[:6], timeout=TIMEOUT)
    page.get_by_role("navigation", name="Your record").get_by_role(
        "link", name="Research", exact=True).click()
    expect(page.get_by_test_id("study").first).to_be_visible(timeout=TIMEOUT)
    return session


def _choose(study: Locator, labels: list[str]) -> None:
    for label in labels:
        study.get_by_role("checkbox", name=re.compile(re.escape(label) + "$")).check()


def _study_records(client: Any, study: str) -> list[bytes]:
    """The patient's study copy as stored: every record of the study's scope, decrypted."""
    from kizuna.research.studies import parse_study_id, study_label

    records = client.records(labels=[study_label(parse_study_id(study))])
    return sorted(client.read_own(bytes(r.record_id)) for r in records)


def _pythons_copy(client: Any, study: str, labels: list[str]) -> tuple[list[bytes], set[bytes]]:
    """What ``kizuna patient consent`` makes of the same records (not sent): the contents
    (sorted) and the record ids its import would give them (consent_to_study's source digest,
    the import's rule)."""
    from kizuna.client.importer import record_id_of
    from kizuna.research.studies import _copy_records, parse_study_id

    copies, _left_out = _copy_records(client, parse_study_id(study), labels)
    digest = hashlib.sha256(b"".join(hashlib.sha256(c.content).digest() for c in copies))
    key = client.keys.wallet.import_id_key().reveal()
    ids = {bytes(record_id_of(key, digest.digest(), i)) for i in range(len(copies))}
    return sorted(c.content for c in copies), ids


def _exported(directory: Path) -> list[bytes]:
    return sorted(canonical_json(json.loads(line)) for path in directory.glob("*.ndjson")
                  for line in path.read_text("utf-8").splitlines())


def test_a_patient_takes_part_and_the_researcher_exports_the_pages_copy(
        web: Web, tmp_path: Path, synthea_patients: Callable[..., Path]) -> None:
    from kizuna.chain.connection import connect
    from kizuna.research.studies import parse_study_id, study_label

    synthea = small_bundle(synthea_patient(synthea_patients), size=12, per_type=3)
    study = _register(web, "Blood pressure and diabetes in adults over 50",
                      [*CHOSEN, "Encounter"])
    wallet = web.wallet()
    patient = to_checksum_address(wallet.address)
    chain = connect(web.stack.rpc_url, web.stack.deployment_file)
    with _patient(web, wallet) as client:
        _import(client, synthea, tmp_path / "journal")
        # One record added later (a later upload time): the copy's order is the service's,
        # oldest first, as the command line reads it, not the page's newest-first lists.
        time.sleep(1.1)
        later = next(e["resource"] for e in synthea["entry"]
                     if e["resource"]["resourceType"] == "Observation")
        client.add_record(json.dumps({**later, "id": "later-1"}).encode(),
                          label="Observation:vital-signs", content_type="application/fhir+json")

        session = _open_research(web, wallet, "desktop")
        page = session.page
        mine = page.get_by_test_id("study").filter(has_text="Blood pressure and diabetes")
        mine.get_by_role("button", name="Take part…").click()
        panel = mine.get_by_test_id("consent-panel")
        expect(panel.get_by_test_id("consent-prepare")).to_be_disabled()
        check_layout(session, "consent-choose")
        _choose(mine, CHOSEN)
        panel.get_by_test_id("consent-prepare").click()
        preview = panel.get_by_test_id("consent-preview")
        expect(preview).to_be_visible(timeout=TIMEOUT)

        python, python_ids = _pythons_copy(client, study, CHOSEN)
        kinds: dict[str, int] = {}
        for content in python:
            kind = json.loads(content)["resourceType"]
            kinds[kind] = kinds.get(kind, 0) + 1
        shown = sorted(preview.get_by_test_id("consent-counts").locator("li").all_inner_texts())
        assert shown == sorted(f"{n} {kind}" for kind, n in kinds.items())
        expect(preview).to_contain_text(f"{len(python)} de-identified records")
        expect(preview).to_contain_text("Removed: names, identifiers")
        expect(preview.get_by_test_id("consent-empty")).to_contain_text("Other conditions")
        assert not chain.studies.consent_of(parse_study_id(study), patient).consented
        check_layout(session, "consent-preview")

        panel.get_by_test_id("consent-share").click()
        expect(page.get_by_test_id("notice").filter(has_text="You take part")
               ).to_be_visible(timeout=TIMEOUT)
        expect(mine.get_by_test_id("study-state")).to_have_text("you take part")
        check_layout(session, "consent-done")
        assert chain.studies.consent_of(parse_study_id(study), patient).consented

        # Each wallet request showed its purpose; the consent's is the study's.
        prompts = [c.prompt or "" for c in wallet.calls_of("eth_signTypedData_v4")]
        consent = [p for p in prompts if "Take part in a research study" in p]
        assert len(consent) == 1 and "Blood pressure and diabetes" in consent[0], prompts
        assert all(prompts), prompts

        # The page's copy, byte for byte Python's.
        stored = _study_records(client, study)
        assert stored == python and len(stored) >= 5
        # ... under the record ids the command line would give it (a retry by either resumes)
        ids = {bytes(r.record_id) for r in client.records(labels=[study_label(
            parse_study_id(study))])}
        assert ids == python_ids

    # The researcher's export is that copy, and no direct identifier of the input is in it.
    out = tmp_path / "export"
    counts = _export(web, study, out)["counts"]
    assert sum(counts.values()) == len(python), counts
    assert _exported(out) == python
    identifiers = direct_identifiers(synthea)
    raw = tmp_path / "raw"
    write_bulk_ndjson((e["resource"] for e in synthea["entry"]), raw)
    assert len({i for _, i in scan(raw, identifiers)}) > 0.5 * len(identifiers) > 0
    assert scan(out, identifiers) == []

    # Withdrawing in the page stops further reads, from a wallet holding no ether (relayed).
    wallet.fund(0)
    mine.get_by_role("button", name="Withdraw from this study").click()
    expect(page.get_by_test_id("notice").filter(has_text="You no longer take part")
           ).to_be_visible(timeout=TIMEOUT)
    assert not chain.studies.consent_of(parse_study_id(study), patient).consented
    assert chain.w3.eth.get_balance(patient) == 0
    again = _export(web, study, tmp_path / "after")
    assert again["counts"] == {}
    with _patient(web, wallet) as client:
        record = client.records(labels=[study_label(parse_study_id(study))])[0]
    with web.stack.provider(SATO) as sato, pytest.raises(AccessDenied):
        sato.read(patient=patient, record_id=bytes(record.record_id))  # the CLI's exit 4


def _fail_once(page: Page, pattern: str) -> list[str]:
    """The first request to ``pattern`` fails on the way (the network), later ones pass."""
    failed: list[str] = []

    def handle(route: Route) -> None:
        if not failed:
            failed.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(pattern, handle)
    return failed


DICOM_VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "deidentify_dicom.json"


def _dicom_files() -> tuple[bytes, bytes]:
    """A real Part 10 file with identifiers in the header, items and private tags (implicit VR,
    undefined lengths), and a big-endian one the page does not read; both built by pydicom."""
    spec = json.loads(DICOM_VECTORS.read_text("utf-8"))
    rich = next(c for c in spec["cases"] if c["name"].startswith("implicit VR"))
    big = next(r for r in spec["page_refusals"] if "big endian" in r["name"])
    return base64.b64decode(rich["input"]), base64.b64decode(big["input"])


def _dicom_identifiers(content: bytes) -> set[str]:
    """The file's direct identifiers: every text value of a person's name, of an attribute the
    profile removes, empties or replaces, and of a private attribute, at every depth."""
    from kizuna.storage.attachments import identifying_keywords

    keywords = set(identifying_keywords())
    found: set[str] = set()

    def walk(ds: pydicom.Dataset) -> None:
        for element in ds:
            if element.VR == "SQ":
                for item in element.value:
                    walk(item)
            elif element.VR in ("PN", "LO", "SH", "DA", "UI", "LT", "ST", "AE") and (
                    element.VR == "PN" or element.keyword in keywords or element.tag.is_private):
                values = element.value if element.VM > 1 else [element.value]
                found.update(str(v).strip() for v in values if str(v).strip())

    ds = pydicom.dcmread(io.BytesIO(content))
    walk(ds)
    walk(ds.file_meta)
    return {i for i in found if len(i) >= 3}


def _dicom_scan(files: list[Path], identifiers: set[str], scratch: Path) -> list[tuple[str, str]]:
    """The one scanner over DICOM files: each file's bytes as text (Latin-1) in a file it
    reads."""
    scratch.mkdir()
    for path in files:
        (scratch / f"{path.stem}.ndjson").write_text(path.read_bytes().decode("latin-1"), "utf-8")
    hits: list[tuple[str, str]] = scan(scratch, identifiers)
    return hits


def test_at_phone_width_dicom_is_de_identified_and_a_failure_part_way_resumes(
        web: Web, tmp_path: Path) -> None:
    from kizuna.chain.connection import connect
    from kizuna.research.studies import parse_study_id, study_label

    vital = {"resourceType": "Observation", "id": "hr-1", "status": "final",
             "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                 "observation-category",
                                       "code": "vital-signs"}]}],
             "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                                  "display": "Heart rate"}]},
             "subject": {"reference": "Patient/p-1", "display": "Ama O'Brien"},
             "effectiveDateTime": "2024-03-01T10:00:00Z",
             "valueQuantity": {"value": 72, "unit": "/min"}}
    dicom, big_endian = _dicom_files()
    study = _register(web, "Heart rate and imaging",
                      ["Observation:vital-signs", "ImagingStudy", "Media"])
    wallet = web.wallet()
    patient = to_checksum_address(wallet.address)
    chain = connect(web.stack.rpc_url, web.stack.deployment_file)
    with _patient(web, wallet) as client:
        for n in range(3):
            client.add_record(json.dumps({**vital, "id": f"hr-{n}"}).encode(),
                              label="Observation:vital-signs", content_type="application/fhir+json")
        client.add_record(dicom, label="ImagingStudy", content_type="application/dicom")
        client.add_record(big_endian, label="Media", content_type="application/dicom")

    session = _open_research(web, wallet, "phone")
    page = session.page
    mine = page.get_by_test_id("study").filter(has_text="Heart rate and imaging")
    mine.get_by_role("button", name="Take part…").click()
    panel = mine.get_by_test_id("consent-panel")
    _choose(mine, ["Observation:vital-signs", "ImagingStudy", "Media"])
    panel.get_by_test_id("consent-prepare").click()
    error = panel.get_by_test_id("error")
    expect(error).to_contain_text("1 DICOM image file", timeout=TIMEOUT)
    expect(error).to_contain_text("of Media")
    expect(error).to_contain_text("big endian")
    expect(error).to_contain_text(f"kizuna patient consent {study}")
    assert error.get_by_role("button", name="Try again").count() == 0  # choosing helps, not trying
    check_layout(session, "consent-dicom-refused-phone")

    mine.get_by_role("checkbox", name=re.compile("Media$")).uncheck()
    panel.get_by_test_id("consent-prepare").click()
    preview = panel.get_by_test_id("consent-preview")
    expect(preview).to_contain_text("3 Observation", timeout=TIMEOUT)
    expect(preview).to_contain_text("1 DICOM image")
    with _patient(web, wallet) as client:
        python, python_ids = _pythons_copy(client, study, ["Observation:vital-signs",
                                                           "ImagingStudy"])
    failed = _fail_once(page, "**/wallet/relay")
    session.watched.allow_error(r"ERR_CONNECTION_RESET .*/wallet/relay")  # the failure made here
    panel.get_by_test_id("consent-share").click()
    expect(error).to_be_visible(timeout=TIMEOUT)
    assert failed
    expect(panel.get_by_test_id("consent-abandon")).to_be_visible()
    expect(panel.get_by_test_id("consent-stopped")).to_contain_text("Recording your consent")
    check_layout(session, "consent-failed-phone")
    sid = parse_study_id(study)
    assert not chain.studies.consent_of(sid, patient).consented
    with _patient(web, wallet) as client:
        copies = client.records(labels=[study_label(sid)])
    assert len(copies) == 4

    error.get_by_role("button", name="Try again").click()
    expect(page.get_by_test_id("notice").filter(has_text="You take part")
           ).to_be_visible(timeout=TIMEOUT)
    assert chain.studies.consent_of(sid, patient).consented
    with _patient(web, wallet) as client:
        again = client.records(labels=[study_label(sid)])
        stored = _study_records(client, study)
    assert sorted(bytes(r.record_id) for r in again) == sorted(bytes(r.record_id) for r in copies)
    assert {bytes(r.record_id) for r in again} == python_ids
    assert stored == python  # the DICOM copy too, byte for byte Python's
    check_layout(session, "consent-done-phone")

    # The researcher's export holds the DICOM copy; none of the file's identifiers is in it.
    out = tmp_path / "export"
    counts = _export(web, study, out)["counts"]
    assert counts.get("dicom") == 1 and counts.get("Observation") == 3, counts
    exported = sorted((out / "dicom").glob("*.dcm"))
    assert [p.read_bytes() for p in exported] == [c for c in python if c[128:132] == b"DICM"]
    identifiers = _dicom_identifiers(dicom)
    assert {"O'Brien^Ama", "MRN-99912", "19500203", "Boston General Hospital",
            "Reviewer^Rita"} <= identifiers
    raw = tmp_path / "raw.dcm"
    raw.write_bytes(dicom)
    assert len({i for _, i in _dicom_scan([raw], identifiers, tmp_path / "scan-raw")}) == \
        len(identifiers)
    assert _dicom_scan(exported, identifiers, tmp_path / "scan-export") == []
    assert pydicom.dcmread(exported[0]).PatientIdentityRemoved == "YES"
