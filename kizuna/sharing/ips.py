"""The International Patient Summary (HL7 FHIR IPS, R4), built on the patient's side.

:func:`build_ips` turns the patient's decrypted FHIR resources into an IPS document: a
``Bundle`` of type ``document`` whose first entry is a ``Composition`` (LOINC 60591-5
"Patient summary Document") about the patient, with these sections (LOINC codes of the IG):

============  ==========  ===========  ===================================================
section       code        IPS status   what goes in
============  ==========  ===========  ===================================================
problems      11450-4     required     Conditions still active (active, recurrence, relapse),
                                       the latest of each code
allergies     48765-2     required     AllergyIntolerances not refuted / entered in error
medications   10160-0     required     MedicationRequests / Statements still active
immunizations 11369-6     recommended  completed Immunizations
results       30954-2     recommended  laboratory Observations, the latest of each code
vital signs   8716-3      optional     vital-signs Observations, the latest of each code
============  ==========  ===========  ===================================================

Every section is written, each with a narrative (``text``); one with nothing to list says so
with ``emptyReason`` (``unavailable``: the records hold nothing for it) and no entries, as the
IG asks (a section has entries or an empty reason, never both). The entries' resources are
copied in with ``urn:uuid:`` fullUrls and their references rewritten to them; references to
what the summary does not carry (encounters, practitioners, ...) keep their ``display`` only,
so the document is self-contained.

:func:`check_ips` is the profile's required structure, written from the IG's text (Bundle-uv-ips,
Composition-uv-ips and the section slices), run after Kizuna's FHIR validation
(:func:`kizuna.storage.fhir.validate.validate`); problems are a
:class:`~kizuna.errors.FhirValidationError` naming each path. :func:`ips_pdf` renders the same
document as a readable PDF (real text, not pictures of it).
"""

from __future__ import annotations

import html
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kizuna.errors import FhirValidationError, InputError
from kizuna.storage.fhir.validate import validate

LOINC = "http://loinc.org"
EMPTY_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
BUNDLE_PROFILE = "http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips"
COMPOSITION_PROFILE = "http://hl7.org/fhir/uv/ips/StructureDefinition/Composition-uv-ips"
SUMMARY_CODE = "60591-5"
IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"
_NAMESPACE = uuid.UUID("1b9f4f5e-6d0a-4c55-9a53-3f1c2a1d0e16")
"""Names the fullUrl of a resource whose id is not a UUID (uuid5 of ``Type/id``)."""


@dataclass(frozen=True, slots=True)
class Section:
    """One IPS section: its key, title, LOINC code and display, whether the IG requires it,
    and the resource types its entries may be."""

    key: str
    title: str
    code: str
    display: str
    required: bool
    types: frozenset[str]


SECTIONS: tuple[Section, ...] = (
    Section("problems", "Problems", "11450-4", "Problem list - Reported", True,
            frozenset({"Condition"})),
    Section("allergies", "Allergies and intolerances", "48765-2",
            "Allergies and adverse reactions Document", True,
            frozenset({"AllergyIntolerance"})),
    Section("medications", "Medications", "10160-0", "History of Medication use Narrative",
            True, frozenset({"MedicationStatement", "MedicationRequest"})),
    Section("immunizations", "Immunizations", "11369-6", "History of Immunization Narrative",
            False, frozenset({"Immunization"})),
    Section("results", "Results", "30954-2",
            "Relevant diagnostic tests/laboratory data Narrative", False,
            frozenset({"Observation", "DiagnosticReport"})),
    Section("vital_signs", "Vital signs", "8716-3", "Vital signs", False,
            frozenset({"Observation"})),
)
REQUIRED_CODES = frozenset(s.code for s in SECTIONS if s.required)

_ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
_ACTIVE_MEDICATION = frozenset({"active", "on-hold", "intended"})
_NOT_ALLERGIES = frozenset({"refuted", "entered-in-error"})


# --- reading a resource -----------------------------------------------------------------------


def _codes(concept: Any) -> list[str]:
    if not isinstance(concept, Mapping):
        return []
    return [str(c.get("code")) for c in concept.get("coding") or [] if isinstance(c, Mapping)]


def _categories(resource: Mapping[str, Any]) -> set[str]:
    return {code for concept in resource.get("category") or [] for code in _codes(concept)}


def concept_text(concept: Any) -> str:
    """What a person reads of a CodeableConcept: its text, else its first display, else code."""
    if not isinstance(concept, Mapping):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, Mapping) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""


def _when(resource: Mapping[str, Any]) -> str:
    """The resource's clinically relevant date (the first of the usual fields), ISO text."""
    for key in ("effectiveDateTime", "onsetDateTime", "occurrenceDateTime", "authoredOn",
                "recordedDate", "issued", "dateAsserted"):
        if resource.get(key):
            return str(resource[key])
    for key in ("effectivePeriod", "onsetPeriod"):
        period = resource.get(key)
        if isinstance(period, Mapping) and period.get("start"):
            return str(period["start"])
    return ""


def _number(value: Any) -> Any:
    """A quantity's value as the narrative writes it: an integral float as its int (``72.0``
    reads ``72``), so the page's builder (web/src/sharing/ips.ts), whose JSON parser cannot
    tell 72.0 from 72, writes the same line."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return int(value)
    return value


def _value(resource: Mapping[str, Any]) -> str:
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, Mapping) and "value" in quantity:
        unit = quantity.get("unit") or quantity.get("code") or ""
        return f"{_number(quantity['value'])} {unit}".strip()
    if resource.get("valueCodeableConcept"):
        return concept_text(resource["valueCodeableConcept"])
    if resource.get("valueString") is not None:
        return str(resource["valueString"])
    parts = [f"{concept_text(c.get('code'))}: {_value(c)}"
             for c in resource.get("component") or [] if isinstance(c, Mapping)]
    return "; ".join(p for p in parts if not p.endswith(": "))


def describe(resource: Mapping[str, Any],
             medications: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """One line a person reads for an entry (the narrative and the PDF both use it)."""
    kind = resource.get("resourceType")
    when = _when(resource)[:10]
    if kind == "Condition":
        text = concept_text(resource.get("code")) or "condition"
        return f"{text} (since {when})" if when else text
    if kind == "AllergyIntolerance":
        text = concept_text(resource.get("code")) or "allergy"
        crit = resource.get("criticality")
        return f"{text}, criticality {crit}" if crit else text
    if kind in ("MedicationRequest", "MedicationStatement"):
        text = concept_text(resource.get("medicationCodeableConcept"))
        ref = (resource.get("medicationReference") or {}).get("reference")
        if not text and medications is not None and isinstance(ref, str) and ref in medications:
            text = concept_text(medications[ref].get("code"))
        return f"{text or 'medication'} (from {when})" if when else (text or "medication")
    if kind == "Immunization":
        text = concept_text(resource.get("vaccineCode")) or "vaccine"
        return f"{text} on {when}" if when else text
    if kind == "Observation":
        text = concept_text(resource.get("code")) or "observation"
        value = _value(resource)
        line = f"{text}: {value}" if value else text
        return f"{line} ({when})" if when else line
    return concept_text(resource.get("code")) or str(kind)


# --- choosing what goes in --------------------------------------------------------------------


def _latest_per_code(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The most recent Observation of each code (by its date), in order of code text."""
    latest: dict[str, dict[str, Any]] = {}
    for obs in observations:
        key = "|".join(sorted(_codes(obs.get("code")))) or concept_text(obs.get("code"))
        if key not in latest or _when(obs) > _when(latest[key]):
            latest[key] = obs
    return sorted(latest.values(), key=lambda o: concept_text(o.get("code")).lower())


def _pick(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    chosen: dict[str, list[dict[str, Any]]] = {s.key: [] for s in SECTIONS}
    labs: list[dict[str, Any]] = []
    vitals: list[dict[str, Any]] = []
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "Condition":
            if set(_codes(resource.get("clinicalStatus"))) & _ACTIVE_CONDITION:
                chosen["problems"].append(resource)
        elif kind == "AllergyIntolerance":
            if not set(_codes(resource.get("verificationStatus"))) & _NOT_ALLERGIES:
                chosen["allergies"].append(resource)
        elif kind in ("MedicationRequest", "MedicationStatement"):
            if resource.get("status") in _ACTIVE_MEDICATION:
                chosen["medications"].append(resource)
        elif kind == "Immunization":
            if resource.get("status") == "completed":
                chosen["immunizations"].append(resource)
        elif kind == "Observation" and resource.get("status") in ("final", "amended",
                                                                   "corrected"):
            categories = _categories(resource)
            if "laboratory" in categories:
                labs.append(resource)
            elif "vital-signs" in categories:
                vitals.append(resource)
    chosen["results"] = _latest_per_code(labs)
    chosen["vital_signs"] = _latest_per_code(vitals)
    # One entry per active problem: a record often holds the same finding noted at each visit
    # (Synthea's "Medication review due" every year); the latest stands for it.
    chosen["problems"] = _latest_per_code(chosen["problems"])
    for key in ("problems", "allergies", "medications", "immunizations"):
        chosen[key].sort(key=_when, reverse=True)
    return chosen


# --- references -----------------------------------------------------------------------------


def full_url(resource: Mapping[str, Any]) -> str:
    """The ``urn:uuid:`` a resource has in the summary: its id when that is a UUID."""
    rid = str(resource.get("id", ""))
    try:
        return f"urn:uuid:{uuid.UUID(rid)}"
    except ValueError:
        name = f"{resource.get('resourceType')}/{rid}"
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, name)}"


def _aliases(resource: Mapping[str, Any]) -> list[str]:
    """The ways the patient's records refer to a resource (``Type/id``, ``urn:uuid:id``)."""
    rid = str(resource.get("id", ""))
    return [f"{resource.get('resourceType')}/{rid}", f"urn:uuid:{rid}", full_url(resource)]


def _rewrite(value: Any, targets: Mapping[str, str]) -> Any:
    """A copy of ``value`` with each reference to an included resource pointing at its fullUrl,
    and each other reference reduced to its display (the document is self-contained)."""
    if isinstance(value, list):
        return [_rewrite(v, targets) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _rewrite(v, targets) for k, v in value.items()}
    ref = value.get("reference")
    if isinstance(ref, str) and not ref.startswith("#"):
        if ref in targets:
            out["reference"] = targets[ref]
        else:
            del out["reference"]
            out.setdefault("display", "not included in this summary")
    return out


# --- the document ---------------------------------------------------------------------------


def _div(lines: Iterable[str]) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<div xmlns="http://www.w3.org/1999/xhtml"><ul>{items}</ul></div>'


def _empty_div(title: str) -> str:
    return ('<div xmlns="http://www.w3.org/1999/xhtml"><p>'
            f"No {html.escape(title.lower())} in the patient's records.</p></div>")


def patient_name(patient: Mapping[str, Any]) -> str:
    for name in patient.get("name") or []:
        if not isinstance(name, Mapping):
            continue
        if name.get("text"):
            return str(name["text"])
        given = " ".join(str(g) for g in name.get("given") or [])
        return f"{given} {name.get('family', '')}".strip()
    return "the patient"


def build_ips(resources: Iterable[Mapping[str, Any]], *, now: datetime | None = None,
              document_id: str | None = None) -> dict[str, Any]:
    """The IPS document (a dict, FHIR JSON) of the patient's ``resources``, validated.

    Raises :class:`~kizuna.errors.InputError` when no ``Patient`` is among them (an IPS is
    about one named patient) and :class:`~kizuna.errors.FhirValidationError` when the result
    fails FHIR or IPS checks (a resource of the records that is itself invalid)."""
    items = [dict(r) for r in resources if isinstance(r, Mapping)]
    patients = [r for r in items if r.get("resourceType") == "Patient"]
    if not patients:
        raise InputError("Patient", "no Patient resource among the records: an IPS names "
                                    "its patient (import your demographics first)")
    patient = patients[0]
    medications = {alias: r for r in items if r.get("resourceType") == "Medication"
                   for alias in _aliases(r)}
    chosen = _pick(items)
    included: list[dict[str, Any]] = [patient]
    seen = {full_url(patient)}
    for section in SECTIONS:
        for resource in chosen[section.key]:
            ref = (resource.get("medicationReference") or {}).get("reference")
            for extra in ([medications[ref]] if ref in medications else []) + [resource]:
                if full_url(extra) not in seen:
                    seen.add(full_url(extra))
                    included.append(extra)
    targets = {alias: full_url(r) for r in included for alias in _aliases(r)}
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    stamp = moment.isoformat().replace("+00:00", "Z")
    doc_id = document_id or str(uuid.uuid4())
    subject = {"reference": full_url(patient), "display": patient_name(patient)}
    sections: list[dict[str, Any]] = []
    for section in SECTIONS:
        entries = chosen[section.key]
        out: dict[str, Any] = {
            "title": section.title,
            "code": {"coding": [{"system": LOINC, "code": section.code,
                                 "display": section.display}]},
        }
        if entries:
            out["text"] = {"status": "generated",
                           "div": _div(describe(e, medications) for e in entries)}
            out["entry"] = [{"reference": full_url(e)} for e in entries]
        else:
            out["text"] = {"status": "generated", "div": _empty_div(section.title)}
            out["emptyReason"] = {"coding": [{
                "system": EMPTY_REASON_SYSTEM, "code": "unavailable",
                "display": "Unavailable"}],
                "text": "nothing of this kind in the patient's records"}
        sections.append(out)
    composition = {
        "resourceType": "Composition", "id": str(uuid.uuid5(_NAMESPACE, doc_id)),
        "meta": {"profile": [COMPOSITION_PROFILE]},
        "text": {"status": "generated", "div": _div(
            [f"International Patient Summary of {patient_name(patient)}, made {stamp}"])},
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": SUMMARY_CODE,
                             "display": "Patient summary Document"}]},
        "subject": subject, "date": stamp, "author": [subject],
        "title": f"International Patient Summary of {patient_name(patient)}",
        "confidentiality": "N",
        "section": sections,
    }
    entries_out = [{"fullUrl": f"urn:uuid:{composition['id']}", "resource": composition}]
    entries_out += [{"fullUrl": full_url(r), "resource": _rewrite(r, targets)}
                    for r in included]
    bundle = {
        "resourceType": "Bundle", "id": doc_id,
        "meta": {"profile": [BUNDLE_PROFILE]},
        "identifier": {"system": IDENTIFIER_SYSTEM, "value": f"urn:uuid:{doc_id}"},
        "type": "document", "timestamp": stamp, "entry": entries_out,
    }
    check_ips(bundle)
    return bundle


# --- the profile's required structure -------------------------------------------------------


def ips_issues(bundle: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every way ``bundle`` misses the IPS profile's required structure, as (path, reason).

    From the IG: Bundle-uv-ips (type ``document``, an identifier, a timestamp, the Composition
    first, a Patient), Composition-uv-ips (status, type 60591-5, subject = the Patient, a date,
    an author, a title, sections) and its section slices (problems, allergies and medications
    required; each section with a code and a narrative, and entries or an emptyReason but not
    both; entries resolving in the Bundle to a resource type the section allows)."""
    issues: list[tuple[str, str]] = []

    def need(cond: bool, path: str, reason: str) -> None:
        if not cond:
            issues.append((path, reason))

    need(bundle.get("resourceType") == "Bundle", "Bundle.resourceType", "must be Bundle")
    need(bundle.get("type") == "document", "Bundle.type", "an IPS is a Bundle of type document")
    identifier = bundle.get("identifier")
    need(isinstance(identifier, Mapping) and bool(identifier.get("value")),
         "Bundle.identifier", "is required (a document has a persistent identifier)")
    need(bool(bundle.get("timestamp")), "Bundle.timestamp", "is required")
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, Mapping)]
    by_url = {str(e.get("fullUrl")): e.get("resource") or {} for e in entries}
    first = entries[0].get("resource") if entries else None
    if not isinstance(first, Mapping) or first.get("resourceType") != "Composition":
        issues.append(("Bundle.entry[0]", "the first entry of a document is its Composition"))
        return issues
    need(any((e.get("resource") or {}).get("resourceType") == "Patient" for e in entries),
         "Bundle.entry", "an IPS carries its Patient")
    c = "Bundle.entry[0].resource"
    need(first.get("status") in ("final", "preliminary", "amended"), f"{c}.status",
         "must be final, preliminary or amended")
    need(SUMMARY_CODE in _codes(first.get("type")), f"{c}.type",
         f"must be LOINC {SUMMARY_CODE} (Patient summary Document)")
    subject = (first.get("subject") or {}).get("reference")
    need((by_url.get(str(subject)) or {}).get("resourceType") == "Patient", f"{c}.subject",
         "must refer to the Patient entry of the Bundle")
    need(bool(first.get("date")), f"{c}.date", "is required")
    need(bool(first.get("author")), f"{c}.author", "at least one author is required")
    need(bool(first.get("title")), f"{c}.title", "is required")
    found: set[str] = set()
    known = {s.code: s for s in SECTIONS}
    for i, section in enumerate(first.get("section") or []):
        path = f"{c}.section[{i}]"
        codes = [x for x in _codes(section.get("code")) if x in known]
        if not codes:
            continue  # a section the IPS does not define is allowed (open slicing)
        spec = known[codes[0]]
        found.add(spec.code)
        need(bool(section.get("title")), f"{path}.title", "is required")
        need(bool((section.get("text") or {}).get("div")), f"{path}.text",
             "a section carries its narrative")
        has_entries = bool(section.get("entry"))
        need(has_entries != bool(section.get("emptyReason")), path,
             "has entries or an emptyReason, not both and not neither")
        for j, entry in enumerate(section.get("entry") or []):
            target = by_url.get(str((entry or {}).get("reference")))
            if target is None:
                issues.append((f"{path}.entry[{j}]", "does not resolve to an entry of the "
                                                     "Bundle"))
            elif target.get("resourceType") not in spec.types:
                issues.append((f"{path}.entry[{j}]", f"{target.get('resourceType')} is not "
                               f"allowed in the {spec.title} section"))
    for spec in SECTIONS:
        if spec.required and spec.code not in found:
            issues.append((f"{c}.section", f"the {spec.title} section (LOINC {spec.code}) is "
                                           "required"))
    return issues


def check_ips(bundle: Mapping[str, Any]) -> None:
    """Raise :class:`FhirValidationError` unless ``bundle`` is valid FHIR R4 (Kizuna's
    validator) and has the IPS profile's required structure (:func:`ips_issues`)."""
    issues = ips_issues(bundle)
    if issues:
        raise FhirValidationError(issues)
    validate(dict(bundle))


# --- reading it back ------------------------------------------------------------------------


def sections_of(bundle: Mapping[str, Any]) -> list[tuple[Section, list[str]]]:
    """Each known section of an IPS document and the lines a person reads for its entries."""
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, Mapping)]
    by_url = {str(e.get("fullUrl")): e.get("resource") or {} for e in entries}
    composition = entries[0]["resource"] if entries else {}
    known = {s.code: s for s in SECTIONS}
    meds = {url: r for url, r in by_url.items() if r.get("resourceType") == "Medication"}
    out: list[tuple[Section, list[str]]] = []
    for section in composition.get("section") or []:
        codes = [x for x in _codes(section.get("code")) if x in known]
        if codes:
            lines = [describe(by_url.get(str(e.get("reference")), {}), meds)
                     for e in section.get("entry") or []]
            out.append((known[codes[0]], lines))
    return out


def _pdf_text(text: str) -> str:
    """``text`` in the PDF core fonts' character set (Latin-1): accents kept where Latin-1
    has them, others decomposed, anything else a ``?``."""
    if all(ord(ch) < 256 for ch in text):
        return text
    folded = unicodedata.normalize("NFKC", text)
    out = []
    for ch in folded:
        if ord(ch) < 256:
            out.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch)[:1]
        out.append(base if base and ord(base) < 256 else "?")
    return "".join(out)


def ips_pdf(bundle: Mapping[str, Any]) -> bytes:
    """The IPS document as a readable PDF: the patient, then each section's entries as text
    (or why it is empty). Text is real PDF text (searchable, copyable, read by screen readers)."""
    from fpdf import FPDF

    check_ips(bundle)
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, Mapping)]
    patient = next(e["resource"] for e in entries
                   if (e.get("resource") or {}).get("resourceType") == "Patient")
    pdf = FPDF(format="A4")
    pdf.set_title(_pdf_text(f"International Patient Summary - {patient_name(patient)}"))
    pdf.set_lang("en")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    write: Callable[..., Any] = pdf.multi_cell
    pdf.set_font("Helvetica", "B", 18)
    write(0, 10, "International Patient Summary", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    facts = [f"Patient: {patient_name(patient)}",
             f"Born: {patient.get('birthDate', 'unknown')}",
             f"Sex: {patient.get('gender', 'unknown')}",
             f"Made: {bundle.get('timestamp', '')}"]
    for fact in facts:
        write(0, 6, _pdf_text(fact), new_x="LMARGIN", new_y="NEXT")
    for section, lines in sections_of(bundle):
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 14)
        write(0, 8, _pdf_text(section.title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        if not lines:
            write(0, 6, _pdf_text(f"No {section.title.lower()} in the patient's records."),
                  new_x="LMARGIN", new_y="NEXT")
        for line in lines:
            write(0, 6, _pdf_text(f"- {line}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


__all__ = ["REQUIRED_CODES", "SECTIONS", "Section", "build_ips", "check_ips", "describe",
           "full_url", "ips_issues", "ips_pdf", "patient_name", "sections_of"]
