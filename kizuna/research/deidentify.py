"""De-identification of a patient's records for a research study (issue 16, part 2).

The patient's side runs this before anything leaves for a study: the study receives a *copy*
made from the patient's decrypted records, never the records themselves.

FHIR resources (HIPAA Safe Harbor, 45 CFR §164.514(b)(2), as far as it applies to FHIR):

* removed everywhere: ``name``, ``identifier``, ``address``, ``telecom``, ``photo``,
  ``contact``, free text (``text`` — narratives and CodeableConcept texts —, ``note``,
  ``comment``, ``description``, ``conclusion``, ``patientInstruction``, ``title``...),
  ``display`` of anything that is not a terminology Coding (a Reference's display is a
  person's or a place's name), string-valued ``value[x]`` (an extension's ``valueString`` is
  where Synthea keeps the mother's maiden name; ``valueAddress`` a birthplace), attachments'
  data and URLs (clinical notes carry names), device serial and lot numbers, positions;
* resource ids and references: replaced by pseudonyms, ``HMAC(study key, original id)``, so a
  study's references still connect its resources but say nothing about the originals;
* people and places (Practitioner, Organization, Location, RelatedPerson, Person,
  PractitionerRole) are not shared at all: they are not the patient's data;
* dates: every date, dateTime and instant is shifted by the same whole number of days for
  all of one patient's resources in one study (intervals between events survive, the calendar
  dates do not); the offset comes from the patient's secret key and the study id, so it is
  stable for a study (a re-share gives the same copy) and unlinkable across studies;
* ages over 89 (Safe Harbor): a Patient whose age is 90 or more loses its birth date and
  carries an age-group extension instead; an ``Age`` of 90 years or more becomes ``>= 90``.

DICOM: :func:`deidentify_dicom_for_study` applies the existing PS3.15 Annex E Basic Profile
(:func:`kizuna.storage.attachments.deidentify_dicom`) with the study's UID key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kizuna.crypto.pre import UmbralSecretKey
from kizuna.errors import InputError
from kizuna.storage.attachments import UidMap, deidentify_dicom

INFO_STUDY_KEY = b"kizuna/research-study/v1"
"""HKDF info prefix of a patient's key for one study; the 32-byte study id follows it."""
HKDF_SALT = b"kizuna/wallet-keys/v1"  # the wallet keys' salt (kizuna.crypto.wallet_keys)

MAX_SHIFT_DAYS = 365
"""Dates move by 1..365 days, earlier or later (never 0: a copy never keeps a true date)."""

AGE_GROUP_URL = "https://kizuna.health/fhir/age-group"
"""Extension on a de-identified Patient aged 90 or more, in place of its birth date."""
DEIDENTIFIED_TAG = {"system": "https://kizuna.health/fhir/deidentified",
                    "code": "safe-harbor", "display": "De-identified for research"}

NOT_SHARED: frozenset[str] = frozenset({
    "Practitioner", "PractitionerRole", "Organization", "Location", "RelatedPerson", "Person",
})
"""Resource types describing people and places, not the patient: never in a study copy."""

_DROP: frozenset[str] = frozenset({
    # direct identifiers
    "name", "identifier", "address", "telecom", "photo", "contact", "alias",
    "subscriberId", "policyHolder", "serialNumber", "lotNumber", "udiCarrier",
    "distinctIdentifier", "position", "implicitRules",
    # free text
    "text", "div", "note", "comment", "comments", "description", "conclusion",
    "patientInstruction", "title", "summary", "presentedForm", "valueString", "valueMarkdown",
    "valueAddress", "valueHumanName", "valueContactPoint", "valueIdentifier",
    "valueAttachment", "valueUri", "valueUrl", "valueUuid", "valueOid", "data",
})
"""JSON keys dropped wherever they occur (``url`` is kept: an extension's url names its kind;
an Attachment is handled as a whole in :meth:`Deidentifier._walk`)."""

_DATE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)?)?$")
_DATE_KEY = re.compile(r"(?i)(date|datetime|instant|start|end|issued|recorded|created|"
                       r"authoredOn|sent|received|occurred|lastUpdated|timestamp)$")
_UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True, slots=True)
class StudyKey:
    """What one patient de-identifies with for one study (secret: never sent)."""

    offset_days: int
    pseudonym_key: bytes

    def __repr__(self) -> str:
        return "StudyKey(<secret>)"


def study_key(decrypting_key: UmbralSecretKey, study_id: bytes) -> StudyKey:
    """``HKDF-SHA256(ikm = the patient's decrypting key scalar, info = INFO_STUDY_KEY ||
    study id)``: 4 bytes make the day offset, 32 the pseudonym key. Only the patient can make
    it (their wallet's key), it is the same every time for a study, and two studies' keys are
    independent, so two studies cannot link a patient by the offset or the pseudonyms."""
    if len(study_id) != 32:
        raise InputError("study_id", f"must be 32 bytes, got {len(study_id)}")
    okm = HKDF(algorithm=hashes.SHA256(), length=36, salt=HKDF_SALT,
               info=INFO_STUDY_KEY + study_id).derive(decrypting_key.to_secret_bytes())
    n = int.from_bytes(okm[:4], "big") % (2 * MAX_SHIFT_DAYS)
    offset = -(n + 1) if n < MAX_SHIFT_DAYS else n - MAX_SHIFT_DAYS + 1
    return StudyKey(offset_days=offset, pseudonym_key=okm[4:])


class Deidentifier:
    """De-identifies one patient's FHIR resources for one study (see the module text).

    ``types`` maps the patient's resource ids (and ``urn:uuid:`` full URLs) to their resource
    types, so that ``urn:uuid:`` references come out as ``Type/pseudonym`` as FHIR Bulk Data
    expects; references it cannot type keep the ``urn:uuid:`` form with a pseudonym.
    ``as_of`` is the day ages are computed at (today by default).
    """

    def __init__(self, key: StudyKey, *, types: Mapping[str, str] | None = None,
                 as_of: date | None = None) -> None:
        self._key = key
        self._shift = timedelta(days=key.offset_days)
        self._types = dict(types or {})
        self._as_of = as_of or datetime.now(UTC).date()
        self._seen: dict[str, str] = {}
        self._uids: Callable[[str], str] | None = None

    @property
    def offset_days(self) -> int:
        return self._key.offset_days

    def pseudonym(self, original_id: str) -> str:
        """The study copy's id for an original resource id: a UUID made from
        ``HMAC-SHA256(pseudonym key, id)`` (a valid FHIR id, the same for every reference)."""
        found = self._seen.get(original_id)
        if found is None:
            digest = hmac.new(self._key.pseudonym_key, original_id.encode(), hashlib.sha256)
            found = str(uuid.UUID(bytes=digest.digest()[:16], version=4))
            self._seen[original_id] = found
        return found

    def resource(self, resource: Mapping[str, Any]) -> dict[str, Any] | None:
        """The de-identified copy of one resource, or ``None`` for a type never shared."""
        kind = resource.get("resourceType")
        if not isinstance(kind, str):
            raise InputError("resourceType", "missing: not a FHIR resource")
        if kind in NOT_SHARED:
            return None
        out = self._walk(resource, "")
        assert isinstance(out, dict)
        if isinstance(resource.get("id"), str):
            out["id"] = self.pseudonym(resource["id"])
        out["meta"] = {"security": [dict(DEIDENTIFIED_TAG)]}
        if kind == "Patient":
            self._group_age(resource, out)
        return out

    # -- the walk --------------------------------------------------------------------------

    def _walk(self, value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return self._object(value)
        if isinstance(value, list):
            items = (self._walk(item, key) for item in value)
            return [item for item in items if item is not None and item != {}]
        if isinstance(value, str):
            return self._string(value, key)
        return value

    def _object(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        if "contentType" in obj and ("data" in obj or "url" in obj):
            # An Attachment: its content (notes, scans) and its link go; the kind stays.
            return {"contentType": obj["contentType"]}
        out: dict[str, Any] = {}
        is_coding = "system" in obj and "code" in obj
        for k, v in obj.items():
            if k in _DROP or (k == "display" and not is_coding) or k == "meta":
                continue
            if k == "reference" and isinstance(v, str):
                out[k] = self._reference(v)
                continue
            if k == "uid" and isinstance(v, str):
                out[k] = self._uid(v)  # ImagingStudy's DICOM UIDs, as its files' copies
                continue
            if k == "id" or k == "fullUrl":
                continue  # element ids and the resource id (set by the caller)
            kind = type(v)
            if kind is str:  # most values: codes, systems, units (only dates start with a digit)
                out[k] = self._string(v, k) if v[:1].isdigit() else v
                continue
            if kind is not dict and kind is not list:
                out[k] = v  # numbers and booleans
                continue
            walked = self._walk(v, k)
            if walked:  # an object or a list left empty says nothing: dropped
                out[k] = walked
        if "url" in out and "extension" not in out and not any(
            k.startswith("value") for k in out
        ) and set(out) <= {"url"}:
            return None  # an extension whose value was identifying: nothing left to say
        if _is_age(out):
            self._cap_age(out)
        return out

    def _string(self, value: str, key: str) -> str:
        match = _DATE.match(value)
        if match is None or (match.group(2) is None and not _DATE_KEY.search(key)):
            return value
        year, month, day, time = match.groups()
        try:
            moved = date(int(year), int(month or 1), int(day or 1)) + self._shift
        except (ValueError, OverflowError):
            return value  # not a calendar date after all (a code like 2024-13)
        if day is not None:
            return moved.isoformat() + (time or "")
        if month is not None:
            return f"{moved.year:04d}-{moved.month:02d}"
        return f"{moved.year:04d}"

    def _uid(self, uid: str) -> str:
        if self._uids is None:
            self._uids = StudyUidMap(self._key)
        return self._uids(uid)

    def _reference(self, ref: str) -> str:
        if ref.startswith("#"):
            return ref  # a contained resource: local
        if ref.startswith("urn:uuid:"):
            original = ref.removeprefix("urn:uuid:")
            kind = self._types.get(ref) or self._types.get(original)
            return f"{kind}/{self.pseudonym(original)}" if kind else \
                f"urn:uuid:{self.pseudonym(original)}"
        kind, sep, rest = ref.partition("/")
        if "?" in kind:  # a conditional reference, e.g. Practitioner?identifier=...|NPI
            kind = kind.split("?", 1)[0]
            return f"{kind}/{self.pseudonym(ref)}"
        if sep and rest and "/" not in rest:
            return f"{kind}/{self.pseudonym(rest)}"
        # an absolute URL or a versioned reference: nothing of it may survive
        return f"urn:uuid:{self.pseudonym(ref)}"

    # -- ages ------------------------------------------------------------------------------

    def _group_age(self, original: Mapping[str, Any], out: dict[str, Any]) -> None:
        born = original.get("birthDate")
        if not isinstance(born, str) or (match := _DATE.match(born)) is None:
            return
        died = original.get("deceasedDateTime")
        end = self._as_of
        if isinstance(died, str) and (d := _DATE.match(died)) is not None:
            end = date(int(d.group(1)), int(d.group(2) or 1), int(d.group(3) or 1))
        year, month, day = int(match.group(1)), int(match.group(2) or 1), int(match.group(3) or 1)
        age = end.year - year - ((end.month, end.day) < (month, day))
        if age >= 90:
            out.pop("birthDate", None)
            out.setdefault("extension", []).append(
                {"url": AGE_GROUP_URL, "valueCode": "90+"})

    @staticmethod
    def _cap_age(age: dict[str, Any]) -> None:
        if isinstance(age.get("value"), int | float) and age["value"] >= 90:
            age["value"] = 90
            age["comparator"] = ">="


def _is_age(obj: Mapping[str, Any]) -> bool:
    return obj.get("system") == _UCUM and obj.get("code") == "a" and "value" in obj


class StudyUidMap(UidMap):
    """DICOM UIDs for a study copy: ``2.25.`` + the first 128 bits of ``HMAC-SHA256(pseudonym
    key, "dicom-uid:" + UID)`` as a decimal — the same new UID for the same original in every
    file and in ImagingStudy's copy, in every run (the base map draws random UIDs per map), and
    an unrelated one in another study."""

    def __init__(self, key: StudyKey) -> None:
        super().__init__(key.pseudonym_key)
        self._study_key = key.pseudonym_key

    def __call__(self, uid: str) -> str:
        digest = hmac.new(self._study_key, b"dicom-uid:" + uid.encode(), hashlib.sha256)
        return f"2.25.{int.from_bytes(digest.digest()[:16], 'big')}"


def deidentify_dicom_for_study(content: bytes, key: StudyKey) -> bytes:
    """One DICOM file through the PS3.15 Annex E Basic Profile, dates removed, its UIDs
    replaced with the study key (the same UID maps to the same new UID across the patient's
    files for this study, and to an unrelated one for another study)."""
    return deidentify_dicom(content, uids=StudyUidMap(key)).content
