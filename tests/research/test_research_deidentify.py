"""De-identification of Synthea patients for a study: a scanner over the exported FHIR Bulk
NDJSON, with every direct identifier taken from the input Bundles, finds none; dates move by
one offset per patient and study; ages over 89 are grouped; DICOM goes through PS3.15."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from kizuna.crypto.pre import UmbralSecretKey
from kizuna.research.deidentify import (
    AGE_GROUP_URL,
    NOT_SHARED,
    Deidentifier,
    StudyKey,
    study_key,
)
from kizuna.research.export import write_bulk_ndjson

LIVES = ((7, "50-60"), (23, "70-85"), (41, "90-99"))
"""Three whole Synthea lives (seed, age band): the ones tests/web/test_web_deidentify_parity.py
compares with the page's de-identification, so a run generates each once (the oldest died at
68, a life of ~40 years of care)."""
SEEDS = tuple(seed for seed, _ in LIVES)


@pytest.fixture(scope="module")
def cohort(synthea_patients: Callable[..., Path]) -> list[dict[str, Any]]:
    """The three lives' Bundles (fresh copies of the run's shared files)."""
    return [json.loads(synthea_patients(ages, seed=seed).read_text("utf-8"))
            for seed, ages in LIVES]


def direct_identifiers(bundle: dict[str, Any]) -> set[str]:
    """Every name part, identifier value, address part (line, city, postal code), phone and
    email of every resource of the Bundle (patients, practitioners, organizations...), and the
    patient's exact birth date."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            if key in ("name", "address", "telecom", "identifier"):
                for part in ("family", "given", "prefix", "suffix", "line", "city",
                             "postalCode", "value"):
                    items = value.get(part)
                    for item in items if isinstance(items, list) else [items]:
                        if isinstance(item, str):
                            found.add(item)
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif key == "name" and isinstance(value, str):
            found.add(value)  # Organization.name, Location.name
        elif key == "birthDate" and isinstance(value, str):
            found.add(value)

    for entry in bundle["entry"]:
        walk(entry["resource"])
    # state names and US are allowed by Safe Harbor; short titles are not identifiers
    return {s.strip() for s in found if len(s.strip()) >= 2 and s.strip() not in
            {"Massachusetts", "MA", "US", "Mr.", "Mrs.", "Ms.", "Dr.", "PhD", "MD", "JD"}}


_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _whole_token_in(text: str, needle: str) -> bool:
    """Whether ``needle`` occurs in ``text`` with no ASCII letter or digit either side."""
    at = text.find(needle)
    while at >= 0:
        end = at + len(needle)
        if (at == 0 or text[at - 1] not in _ALNUM) and (end == len(text)
                                                         or text[end] not in _ALNUM):
            return True
        at = text.find(needle, at + 1)
    return False


def scan(directory: Path, identifiers: set[str]) -> list[tuple[str, str]]:
    """(file, identifier) for each identifier found as a whole token anywhere in the files,
    ignoring case. Both sides are lowercased once and searched with ``str.find`` (a regex per
    identifier over megabytes of NDJSON cost ~15 CPU-s per Synthea life)."""
    hits = []
    texts = {p.name: p.read_text("utf-8").lower() for p in sorted(directory.glob("*.ndjson"))}
    for ident in sorted(identifiers):
        needle = ident.lower()
        hits += [(name, ident) for name, text in texts.items() if _whole_token_in(text, needle)]
    return hits


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUIDS_AT_EVERY_PLACE = re.compile(f"(?=({_UUID}))")


def contained(needles: Iterable[str], text: str) -> list[str]:
    """The needles found anywhere in ``text`` (case-sensitive substrings): what
    ``[n for n in needles if n in text]`` answers. The UUID-shaped ones (every Synthea resource
    id) are looked up among every UUID-shaped substring of the text, each place it could start
    included, in one pass: ``in`` per id cost ~30 CPU-s for three Synthea lives."""
    needles = list(needles)
    uuid = re.compile(_UUID)
    present = {m.group(1) for m in _UUIDS_AT_EVERY_PLACE.finditer(text)}
    return [n for n in needles if (n in present if uuid.fullmatch(n) else n in text)]


def _key(seed: int, study: int) -> StudyKey:
    return study_key(UmbralSecretKey.from_secret_bytes(bytes([seed]) * 32), bytes([study]) * 32)


def _deidentified(bundle: dict[str, Any], key: StudyKey) -> tuple[Deidentifier, list[Any]]:
    types = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"]}
    deid = Deidentifier(key, types=types)
    out = [deid.resource(e["resource"]) for e in bundle["entry"]]
    return deid, [r for r in out if r is not None]


def test_no_direct_identifier_survives_in_the_ndjson(cohort: list[dict[str, Any]],
                                                     tmp_path: Path) -> None:
    identifiers: set[str] = set()
    shared: list[Any] = []
    for seed, bundle in zip(SEEDS, cohort, strict=True):
        identifiers |= direct_identifiers(bundle)
        shared += _deidentified(bundle, _key(seed, 1))[1]
    # the scanner is not blind: the raw input, written the same way, is full of identifiers
    raw = tmp_path / "raw"
    write_bulk_ndjson((e["resource"] for b in cohort for e in b["entry"]), raw)
    raw_hits = scan(raw, identifiers)
    assert len({ident for _, ident in raw_hits}) > 0.9 * len(identifiers)
    assert any(i.startswith("999-") for _, i in raw_hits)  # the SSNs are among them

    out = tmp_path / "export"
    counts = write_bulk_ndjson(shared, out)
    assert counts["Patient"] == 3 and counts["Observation"] > 1000
    assert not NOT_SHARED & set(counts)
    assert scan(out, identifiers) == []
    # nor do the original resource ids (each is also the MRN-like Synthea identifier)
    originals = {e["resource"]["id"] for b in cohort for e in b["entry"]}
    text = "".join(p.read_text("utf-8") for p in out.glob("*.ndjson"))
    assert not contained(originals, text)
    raw_text = "".join(p.read_text("utf-8") for p in raw.glob("*.ndjson"))
    assert set(contained(originals, raw_text)) == originals  # (the search is not blind)


def _dates(value: Any, key: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [d for k, v in value.items() if k not in ("meta", "id") for d in _dates(v, k)]
    if isinstance(value, list):
        return [d for v in value for d in _dates(v, key)]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}(T.*)?", value):
        return [(key, value)]
    return []


def test_dates_shift_consistently_within_a_patient(cohort: list[dict[str, Any]]) -> None:
    offsets = {}
    for seed, bundle in zip(SEEDS, cohort, strict=True):
        key = _key(seed, 1)
        deid, _ = _deidentified(bundle, key)
        deltas = set()
        for entry in bundle["entry"]:
            original = entry["resource"]
            copy = deid.resource(original)
            if copy is None:
                continue
            assert copy["id"] == deid.pseudonym(original["id"])
            before, after = _dates(original), _dates(copy)
            assert len(before) == len(after), original["resourceType"]
            for (k1, d1), (k2, d2) in zip(before, after, strict=True):
                assert k1 == k2 and d1[10:] == d2[10:]  # same element, same time of day
                deltas.add((date.fromisoformat(d2[:10]) - date.fromisoformat(d1[:10])).days)
        assert deltas == {key.offset_days} and key.offset_days != 0
        offsets[seed] = key.offset_days
    # per patient per study: another study gets another offset and other pseudonyms
    other = _key(7, 2)
    assert other.offset_days != offsets[7] or other.pseudonym_key != _key(7, 1).pseudonym_key
    assert Deidentifier(other).pseudonym("x") != Deidentifier(_key(7, 1)).pseudonym("x")
    assert _key(7, 1) == _key(7, 1)  # stable: a re-share makes the same copy


def test_ages_over_89_are_grouped() -> None:
    deid = Deidentifier(StudyKey(offset_days=-10, pseudonym_key=b"k" * 32),
                        as_of=date(2026, 1, 1))
    old = deid.resource({"resourceType": "Patient", "id": "p", "birthDate": "1930-06-01",
                         "name": [{"family": "Old"}]})
    assert old is not None and "birthDate" not in old and "name" not in old
    assert {"url": AGE_GROUP_URL, "valueCode": "90+"} in old["extension"]
    young = deid.resource({"resourceType": "Patient", "id": "p", "birthDate": "1940-06-01"})
    assert young is not None and young["birthDate"] == "1940-05-22"
    onset = deid.resource({"resourceType": "Condition", "id": "c", "subject": {
        "reference": "Patient/p", "display": "Old"}, "onsetAge": {
        "value": 93, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}})
    assert onset is not None
    assert onset["onsetAge"]["value"] == 90 and onset["onsetAge"]["comparator"] == ">="
    assert onset["subject"] == {"reference": f"Patient/{deid.pseudonym('p')}"}


def test_dicom_goes_through_ps315_with_the_study_key() -> None:
    """A pydicom test file (CT_small.dcm, shipped in the wheel): no name, id, birth date or
    study date is left; its UIDs are replaced the same way for one study (so ImagingStudy's
    copy still names them) and differently for another."""
    import pydicom
    from pydicom.data import get_testdata_file

    from kizuna.research.deidentify import deidentify_dicom_for_study

    path = get_testdata_file("CT_small.dcm", download=False)
    assert path is not None
    raw = Path(str(path)).read_bytes()
    original = pydicom.dcmread(Path(str(path)))
    assert str(original.PatientName) and original.StudyDate
    key, other = _key(7, 1), _key(7, 2)
    copy = pydicom.dcmread(io.BytesIO(deidentify_dicom_for_study(raw, key)))
    assert not str(copy.PatientName) and not copy.PatientID
    assert not copy.get("PatientBirthDate") and not copy.get("StudyDate")
    assert copy.PatientIdentityRemoved == "YES"
    assert copy.StudyInstanceUID != original.StudyInstanceUID
    again = pydicom.dcmread(io.BytesIO(deidentify_dicom_for_study(raw, key)))
    assert again.StudyInstanceUID == copy.StudyInstanceUID
    elsewhere = pydicom.dcmread(io.BytesIO(deidentify_dicom_for_study(raw, other)))
    assert elsewhere.StudyInstanceUID != copy.StudyInstanceUID
    # the FHIR side of the same study names the same new UID
    study = Deidentifier(key).resource({"resourceType": "ImagingStudy", "id": "i",
                                        "status": "available",
                                        "subject": {"reference": "Patient/p"},
                                        "uid": str(original.StudyInstanceUID)})
    assert study is not None and study["uid"] == str(copy.StudyInstanceUID)
