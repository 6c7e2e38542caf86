"""Files as FHIR records: PDFs and images as ``DocumentReference``, DICOM as ``ImagingStudy``.

A file itself is never rewritten into FHIR: its bytes are encrypted as they are (as another
record), and a small FHIR resource describes it — content type, size, SHA-1 (base64, as FHIR R4's
``Attachment.hash`` defines it), title, dates; for DICOM the study, series and instance UIDs,
modalities and counts. The describing resource is validated like any other FHIR resource and
becomes an :class:`~kizuna.storage.fhir.importer.ImportedRecord` (canonical bytes, scope label
``DocumentReference`` or ``ImagingStudy``, timeline date).

DICOM headers can be de-identified first, following the Basic Application Level Confidentiality
Profile of DICOM PS3.15 Annex E (:func:`deidentify_dicom`): the identifying attributes of its
Table E.1-1 that patient images carry are removed, emptied, or (UIDs) replaced consistently; all
private attributes, curves and overlay comments are removed; ``PatientIdentityRemoved`` becomes
``YES`` and the method is recorded. Pixel data is left as it is (the profile's Clean Pixel Data
option is not implemented), so a file flagged ``BurnedInAnnotation = YES`` is refused unless the
caller accepts it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import os
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from kizuna.errors import InputError
from kizuna.storage.fhir.dates import datetime_problem
from kizuna.storage.fhir.importer import ImportedRecord, record_for
from kizuna.storage.fhir.validate import validate

Source = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO
"""A file: its bytes, a path, or a readable binary stream (read from where it stands)."""

_CHUNK = 1 << 20
_UNSIGNED_INT_MAX = 2**31 - 1  # FHIR R4 unsignedInt: Attachment.size cannot say more

DICOM_CONTENT_TYPE = "application/dicom"

# --- content types -----------------------------------------------------------------------------

_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    # DICOM first: its 128-byte preamble may itself hold a TIFF header (dual-format files).
    (128, b"DICM", DICOM_CONTENT_TYPE),
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
)


def sniff_content_type(head: bytes) -> str | None:
    """The media type of a file from its first bytes (at least 132), or ``None``."""
    for offset, magic, content_type in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


DOCUMENT_TYPES = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/tiff", "image/webp"}
)
"""Media types :func:`document_reference` describes (DICOM goes to :func:`imaging_study`)."""


# --- reading sources ---------------------------------------------------------------------------


def _open(source: Source) -> tuple[BinaryIO, bool]:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source)), True
    if isinstance(source, str | os.PathLike):
        try:
            return open(source, "rb"), True
        except OSError as exc:
            raise InputError("file", f"cannot read {os.fspath(source)!r}: {exc.strerror}") from exc
    return source, False


@dataclass(frozen=True, slots=True)
class FileDigest:
    """What FHIR's ``Attachment`` says about a file's bytes."""

    size: int
    sha1_base64: str
    """SHA-1 of the bytes, base64 (FHIR R4 ``Attachment.hash``)."""
    sha256_hex: str
    """SHA-256 of the bytes, hex (for Kizuna's own checks; FHIR R4 has no field for it)."""
    head: bytes
    """The first bytes, to recognise the format."""


def digest(source: Source) -> FileDigest:
    """Size and hashes of a file, reading it once in 1 MiB chunks (memory stays flat)."""
    stream, close = _open(source)
    try:
        sha1, sha256, size, head = hashlib.sha1(), hashlib.sha256(), 0, b""
        while chunk := stream.read(_CHUNK):
            if len(head) < 132:
                head += chunk[: 132 - len(head)]
            sha1.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    finally:
        if close:
            stream.close()
    return FileDigest(
        size=size,
        sha1_base64=base64.b64encode(sha1.digest()).decode("ascii"),
        sha256_hex=sha256.hexdigest(),
        head=head,
    )


# --- PDFs and images ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DescribedFile:
    """A file's FHIR description (as a record) and what was measured of the file."""

    record: ImportedRecord
    resource: dict[str, Any]
    content_type: str
    digest: FileDigest


def _instant(moment: datetime | None) -> str:
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        raise InputError("date", "needs a timezone (a FHIR instant has one)")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def document_reference(
    source: Source,
    *,
    subject: str,
    title: str | None = None,
    content_type: str | None = None,
    date: datetime | None = None,
    created: str | None = None,
    url: str | None = None,
    resource_id: str | None = None,
) -> DescribedFile:
    """Describe a PDF or image file as a FHIR R4 ``DocumentReference``.

    ``subject`` is the reference to the patient (``Patient/...`` or ``urn:uuid:...``);
    ``title`` defaults to the file name of a path; ``content_type`` is recognised from the
    bytes when not given (and must agree with them when it is); ``date`` (the
    DocumentReference's, default now) must be timezone-aware; ``created`` is the FHIR dateTime
    the document was written; ``url`` may say where the encrypted bytes will live.
    """
    measured = digest(source)
    sniffed = sniff_content_type(measured.head)
    chosen = content_type or sniffed
    if chosen is None:
        raise InputError("content_type", "not a PDF or image Kizuna recognises; name its type")
    if chosen == DICOM_CONTENT_TYPE or sniffed == DICOM_CONTENT_TYPE:
        raise InputError("content_type", "a DICOM file: describe it with imaging_study()")
    if sniffed is not None and content_type is not None and sniffed != content_type:
        raise InputError("content_type", f"the bytes are {sniffed}, not {content_type}")
    if chosen not in DOCUMENT_TYPES:
        raise InputError("content_type", f"{chosen} is not one of {sorted(DOCUMENT_TYPES)}")
    if title is None and isinstance(source, str | os.PathLike):
        title = Path(source).name
    if created is not None and (problem := datetime_problem(created)):
        raise InputError("created", problem)
    attachment: dict[str, Any] = {"contentType": chosen, "hash": measured.sha1_base64}
    if measured.size <= _UNSIGNED_INT_MAX:
        attachment["size"] = measured.size
    if title:
        attachment["title"] = title
    if created:
        attachment["creation"] = created
    if url:
        attachment["url"] = url
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": resource_id or str(uuid.uuid4()),
        "status": "current",
        "subject": {"reference": subject},
        "date": _instant(date),
        "content": [{"attachment": attachment}],
    }
    if title:
        resource["description"] = title
    validate(resource)
    return DescribedFile(record_for(resource), resource, chosen, measured)


# --- DICOM: ImagingStudy -------------------------------------------------------------------------

_DCM = "http://dicom.nema.org/resources/ontology/DCM"


def read_dicom(source: Source | Dataset, *, pixels: bool = False) -> Dataset:
    """Read a DICOM file (headers only unless ``pixels``); a clear error if it is not one."""
    if isinstance(source, Dataset):
        return source
    stream, close = _open(source)
    try:
        return pydicom.dcmread(stream, stop_before_pixels=not pixels)
    except (InvalidDicomError, EOFError, ValueError, KeyError) as exc:
        raise InputError("file", f"not a readable DICOM file: {exc}") from exc
    finally:
        if close:
            stream.close()


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    text = str(value).strip() if value is not None else ""
    return text or None


def _number(ds: Dataset, keyword: str) -> int | None:
    text = _text(ds, keyword)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _started(ds: Dataset) -> str | None:
    """StudyDate + StudyTime (+ TimezoneOffsetFromUTC) as a FHIR dateTime, or ``None``.

    Without a timezone offset the time is dropped: FHIR needs a zone when a time is given."""
    day = _text(ds, "StudyDate")
    if day is None or len(day) != 8 or not day.isdigit():
        return None
    value = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    time = (_text(ds, "StudyTime") or "").split(".")[0]
    zone = _text(ds, "TimezoneOffsetFromUTC")
    if time.isdigit() and len(time) in (2, 4, 6) and zone and len(zone) == 5:
        hh, mm, ss = time[:2], time[2:4] or "00", time[4:6] or "00"
        value = f"{value}T{hh}:{mm}:{ss}{zone[:3]}:{zone[3:]}"
    return value if datetime_problem(value) is None else None


def imaging_study(
    sources: Iterable[Source | Dataset], *, subject: str, resource_id: str | None = None
) -> ImportedRecord:
    """Describe the DICOM files of one study as a FHIR R4 ``ImagingStudy`` record.

    Every file must belong to the same study (StudyInstanceUID). Series are ordered by
    SeriesNumber, instances by InstanceNumber. Only headers are read.
    """
    datasets = [read_dicom(s) for s in sources]
    if not datasets:
        raise InputError("files", "no DICOM files given")
    resource = imaging_study_resource(datasets, subject=subject, resource_id=resource_id)
    validate(resource)
    return record_for(resource)


def imaging_study_resource(
    datasets: Sequence[Dataset], *, subject: str, resource_id: str | None = None
) -> dict[str, Any]:
    """The ``ImagingStudy`` JSON of datasets of one study (not yet validated)."""
    studies = {_text(ds, "StudyInstanceUID") for ds in datasets}
    if len(studies) != 1 or None in studies:
        raise InputError("files", f"expected the files of one study, got StudyInstanceUIDs "
                                  f"{sorted(str(s) for s in studies)}")
    study_uid = str(studies.pop())
    series: dict[str, list[Dataset]] = {}
    for ds in datasets:
        uid = _text(ds, "SeriesInstanceUID")
        if uid is None or _text(ds, "SOPInstanceUID") is None:
            raise InputError("files", "a DICOM file without SeriesInstanceUID or SOPInstanceUID")
        series.setdefault(uid, []).append(ds)

    def series_order(item: tuple[str, list[Dataset]]) -> tuple[int, str]:
        return (_number(item[1][0], "SeriesNumber") or 0, item[0])

    series_json: list[dict[str, Any]] = []
    modalities: dict[str, None] = {}
    for uid, members in sorted(series.items(), key=series_order):
        first = members[0]
        entry: dict[str, Any] = {"uid": uid}
        if (number := _number(first, "SeriesNumber")) is not None:
            entry["number"] = number
        modality = _text(first, "Modality") or "OT"
        modalities[modality] = None
        entry["modality"] = {"system": _DCM, "code": modality}
        if description := _text(first, "SeriesDescription"):
            entry["description"] = description
        entry["numberOfInstances"] = len(members)
        if body_part := _text(first, "BodyPartExamined"):
            entry["bodySite"] = {"display": body_part}
        instances = []
        ordered = sorted(members, key=lambda d: (_number(d, "InstanceNumber") or 0,
                                                 str(_text(d, "SOPInstanceUID"))))
        for ds in ordered:
            instance: dict[str, Any] = {
                "uid": _text(ds, "SOPInstanceUID"),
                "sopClass": {"system": "urn:ietf:rfc:3986",
                             "code": f"urn:oid:{_text(ds, 'SOPClassUID')}"},
            }
            if (number := _number(ds, "InstanceNumber")) is not None:
                instance["number"] = number
            instances.append(instance)
        entry["instance"] = instances
        series_json.append(entry)

    first = datasets[0]
    resource: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": resource_id or str(uuid.uuid4()),
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}],
        "status": "available",
        "modality": [{"system": _DCM, "code": m} for m in modalities],
        "subject": {"reference": subject},
        "numberOfSeries": len(series_json),
        "numberOfInstances": len(datasets),
        "series": series_json,
    }
    if accession := _text(first, "AccessionNumber"):
        resource["identifier"].append({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                 "code": "ACSN"}]},
            "value": accession,
        })
    if started := _started(first):
        resource["started"] = started
    if description := _text(first, "StudyDescription"):
        resource["description"] = description
    return resource


# --- DICOM: de-identification (PS3.15 Annex E, Basic Profile) -----------------------------------

# Actions of PS3.15 Table E.1-1: X remove, Z empty (zero length), D replace with a dummy value
# of the same VR, U replace UID consistently.
# Where the table allows a choice (X/Z), Z is used for attributes that image IODs require to be
# present (type 2), X otherwise. Dates and times are marked: the "Retain Longitudinal Temporal
# Information with Full Dates" option keeps them.
BASIC_PROFILE: tuple[tuple[str, str], ...] = (
    # patient
    ("PatientName", "Z"), ("PatientID", "Z"), ("IssuerOfPatientID", "X"),
    ("PatientBirthDate", "Z"), ("PatientBirthTime", "X"), ("PatientSex", "Z"),
    ("OtherPatientIDs", "X"), ("OtherPatientIDsSequence", "X"), ("OtherPatientNames", "X"),
    ("PatientBirthName", "X"), ("PatientAge", "X"), ("PatientSize", "X"),
    ("PatientWeight", "X"), ("PatientAddress", "X"), ("PatientMotherBirthName", "X"),
    ("MilitaryRank", "X"), ("BranchOfService", "X"), ("MedicalRecordLocator", "X"),
    ("PatientTelephoneNumbers", "X"), ("PatientTelecomInformation", "X"),
    ("EthnicGroup", "X"), ("Occupation", "X"), ("AdditionalPatientHistory", "X"),
    ("PatientComments", "X"), ("PatientReligiousPreference", "X"),
    ("ResponsiblePerson", "X"), ("ResponsibleOrganization", "X"),
    ("PatientInsurancePlanCodeSequence", "X"), ("CountryOfResidence", "X"),
    ("RegionOfResidence", "X"), ("PatientState", "X"), ("PregnancyStatus", "X"),
    ("MedicalAlerts", "X"), ("Allergies", "X"), ("SmokingStatus", "X"),
    ("LastMenstrualDate", "X"), ("SpecialNeeds", "X"), ("PatientSexNeutered", "X"),
    ("ReferencedPatientSequence", "X"),
    # visit, request, study
    ("AccessionNumber", "Z"), ("StudyID", "Z"), ("AdmissionID", "X"),
    ("CurrentPatientLocation", "X"), ("PatientInstitutionResidence", "X"),
    ("VisitComments", "X"), ("AdmittingDiagnosesDescription", "X"),
    ("AdmittingDiagnosesCodeSequence", "X"), ("StudyDescription", "X"),
    ("SeriesDescription", "X"), ("StudyComments", "X"), ("ImageComments", "X"),
    ("IdentifyingComments", "X"), ("DerivationDescription", "X"), ("ProtocolName", "X"),
    ("RequestAttributesSequence", "X"), ("RequestedProcedureDescription", "X"),
    ("RequestedProcedureID", "X"), ("ReasonForTheRequestedProcedure", "X"),
    ("ScheduledProcedureStepDescription", "X"), ("PerformedProcedureStepID", "X"),
    ("PerformedProcedureStepDescription", "X"), ("ReferencedPerformedProcedureStepSequence", "X"),
    ("PlacerOrderNumberImagingServiceRequest", "Z"),
    ("FillerOrderNumberImagingServiceRequest", "Z"), ("OrderEnteredBy", "X"),
    ("OrderEntererLocation", "X"), ("OrderCallbackPhoneNumber", "X"),
    ("OriginalAttributesSequence", "X"), ("ModifiedAttributesSequence", "X"),
    # people and places
    ("InstitutionName", "X"), ("InstitutionAddress", "X"), ("InstitutionCodeSequence", "X"),
    ("InstitutionalDepartmentName", "X"), ("ReferringPhysicianName", "Z"),
    ("ReferringPhysicianAddress", "X"), ("ReferringPhysicianTelephoneNumbers", "X"),
    ("ReferringPhysicianIdentificationSequence", "X"), ("ConsultingPhysicianName", "X"),
    ("PhysiciansOfRecord", "X"), ("PhysiciansOfRecordIdentificationSequence", "X"),
    ("PerformingPhysicianName", "X"), ("PerformingPhysicianIdentificationSequence", "X"),
    ("NameOfPhysiciansReadingStudy", "X"), ("PhysiciansReadingStudyIdentificationSequence", "X"),
    ("OperatorsName", "X"), ("OperatorIdentificationSequence", "X"),
    ("RequestingPhysician", "X"), ("RequestingService", "X"),
    ("ScheduledPerformingPhysicianName", "X"), ("ContentCreatorName", "Z"),
    ("ContentCreatorIdentificationCodeSequence", "X"), ("PersonName", "Z"),
    ("PerformedStationAETitle", "X"), ("PerformedStationName", "X"), ("PerformedLocation", "X"),
    ("StationName", "X"), ("DeviceSerialNumber", "X"), ("DetectorID", "X"),
    ("TimezoneOffsetFromUTC", "X"),
    # dates and times (kept with keep_dates=True)
    ("StudyDate", "Z"), ("StudyTime", "Z"), ("SeriesDate", "X"), ("SeriesTime", "X"),
    ("AcquisitionDate", "X"), ("AcquisitionTime", "X"), ("AcquisitionDateTime", "X"),
    ("ContentDate", "Z"), ("ContentTime", "Z"), ("InstanceCreationDate", "X"),
    ("InstanceCreationTime", "X"), ("PerformedProcedureStepStartDate", "X"),
    ("PerformedProcedureStepStartTime", "X"), ("PerformedProcedureStepEndDate", "X"),
    ("PerformedProcedureStepEndTime", "X"), ("DateOfSecondaryCapture", "X"),
    ("TimeOfSecondaryCapture", "X"), ("DateOfLastCalibration", "X"),
    ("TimeOfLastCalibration", "X"), ("RTPlanDate", "X"), ("RTPlanTime", "X"),
    ("StructureSetDate", "X"), ("StructureSetTime", "X"),
    ("ObservationDateTime", "D"), ("VerificationDateTime", "D"), ("Date", "D"),
    ("DateTime", "D"), ("Time", "D"),
    # structured reports: the observer who verified the report
    ("VerifyingObserverName", "D"), ("VerifyingOrganization", "D"),
    # UIDs that identify this patient's objects: replaced, the same way in every file
    ("StudyInstanceUID", "U"), ("SeriesInstanceUID", "U"), ("SOPInstanceUID", "U"),
    ("FrameOfReferenceUID", "U"), ("SynchronizationFrameOfReferenceUID", "U"),
    ("ReferencedSOPInstanceUID", "U"), ("ReferencedFrameOfReferenceUID", "U"),
    ("RelatedFrameOfReferenceUID", "U"), ("InstanceCreatorUID", "U"),
    ("IrradiationEventUID", "U"), ("UID", "U"), ("StorageMediaFileSetUID", "U"),
    ("DimensionOrganizationUID", "U"), ("ConcatenationUID", "U"), ("DoseReferenceUID", "U"),
)
"""``(DICOM keyword, action)`` of the Basic Application Level Confidentiality Profile."""

_TEMPORAL_VRS = frozenset({"DA", "TM", "DT"})
_DUMMY: dict[str, str] = {
    "DA": "19000101", "TM": "000000", "DT": "19000101000000", "PN": "ANONYMOUS",
}


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return int(tag)


_ACTIONS: dict[int, str] = {_tag(keyword): action for keyword, action in BASIC_PROFILE}


class UidMap:
    """Replaces UIDs consistently: the same UID always becomes the same new ``2.25.`` UID
    within one map, so references between the files of a study stay intact. The map is keyed
    with a random secret (never stored), so nobody can test a guessed original UID against it.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        self._seen: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        if uid not in self._seen:
            # pydicom derives a 2.25 UID from a SHA-512 of the entropy sources.
            self._seen[uid] = str(generate_uid(prefix=None, entropy_srcs=[self._key.hex(), uid]))
        return self._seen[uid]

    def __repr__(self) -> str:
        return f"UidMap({len(self._seen)} UIDs)"


def _deidentify_dataset(ds: Dataset, uids: UidMap, keep_dates: bool) -> None:
    for element in list(ds):
        tag = int(element.tag)
        group = tag >> 16
        if element.tag.is_private or (0x5000 <= group <= 0x50FF and group % 2 == 0) or (
            0x6000 <= group <= 0x60FF and group % 2 == 0 and tag & 0xFFFF == 0x4000
        ):
            del ds[element.tag]  # private attributes, curve data, overlay comments
            continue
        action = _ACTIONS.get(tag)
        if action is None and element.VR == "PN" and element.value:
            action = "D"  # stricter than the table: no person's name survives anywhere
        if action is None:
            if element.VR == "SQ":
                for item in element.value:
                    _deidentify_dataset(item, uids, keep_dates)
            continue
        if keep_dates and element.VR in _TEMPORAL_VRS:
            continue
        if action == "X":
            del ds[element.tag]
        elif action == "Z":
            ds[element.tag] = DataElement(element.tag, element.VR,
                                          DicomSequence() if element.VR == "SQ" else None)
        elif action == "D":
            element.value = _DUMMY.get(element.VR, "ANONYMOUS")
        elif action == "U" and element.value:
            if element.VM > 1:
                element.value = [uids(str(v)) for v in element.value]
            else:
                element.value = uids(str(element.value))


@dataclass(frozen=True, slots=True)
class DeidentifiedDicom:
    """A de-identified DICOM file (bytes to encrypt) and its dataset (headers)."""

    content: bytes
    dataset: Dataset


def deidentify_dicom(
    source: Source | Dataset,
    *,
    uids: UidMap,
    keep_dates: bool = False,
    patient_pseudonym: str | None = None,
    allow_burned_in_annotation: bool = False,
) -> DeidentifiedDicom:
    """De-identify one DICOM file's header (PS3.15 Annex E Basic Profile) and re-encode it.

    Use one :class:`UidMap` for all files of a patient's study so their UIDs stay consistent.
    ``keep_dates`` applies the Retain Longitudinal Temporal Information with Full Dates option;
    ``patient_pseudonym`` (optional) becomes PatientName and PatientID instead of empty values.
    """
    ds = copy.deepcopy(source) if isinstance(source, Dataset) else read_dicom(source, pixels=True)
    if (_text(ds, "BurnedInAnnotation") or "").upper() == "YES" and not (
        allow_burned_in_annotation
    ):
        raise InputError("file", "pixel data has burned-in annotation (BurnedInAnnotation=YES); "
                                 "the Basic Profile alone cannot remove it")
    _deidentify_dataset(ds, uids, keep_dates)
    _fix_file_meta(ds)
    if patient_pseudonym is not None:
        ds.PatientName = patient_pseudonym
        ds.PatientID = patient_pseudonym
    ds.PatientIdentityRemoved = "YES"
    methods = [("113100", "Basic Application Confidentiality Profile")]
    if keep_dates:
        methods.append(("113106", "Retain Longitudinal Temporal Information Full Dates Option"))
    # LO: at most 64 characters
    ds.DeidentificationMethod = "DICOM PS3.15 Annex E Basic Profile" + (
        "; Full Dates Option" if keep_dates else ""
    )
    codes = []
    for value, meaning in methods:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = DicomSequence(codes)
    out = io.BytesIO()
    try:
        ds.save_as(out, enforce_file_format=True)
    except (AttributeError, ValueError) as exc:
        raise InputError("file", f"cannot write the de-identified DICOM file: {exc}") from exc
    return DeidentifiedDicom(out.getvalue(), ds)


def _fix_file_meta(ds: Dataset) -> None:
    """Keep the file meta header in step with the new UIDs, and complete it where a file left
    required elements empty (the SOP class and instance are in the dataset itself)."""
    meta = getattr(ds, "file_meta", None)
    if not isinstance(meta, FileMetaDataset):
        meta = FileMetaDataset()
        ds.file_meta = meta
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if not meta.get("MediaStorageSOPClassUID") and "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SourceApplicationEntityTitle" in meta:
        del meta.SourceApplicationEntityTitle


def identifying_keywords() -> tuple[str, ...]:
    """Every keyword the Basic Profile table here removes, empties or replaces."""
    return tuple(keyword for keyword, _ in BASIC_PROFILE)


def profile_vr(keyword: str) -> str:
    """The VR of a profile attribute (from pydicom's data dictionary)."""
    return str(dictionary_VR(_tag(keyword)))


__all__ = [
    "BASIC_PROFILE",
    "DICOM_CONTENT_TYPE",
    "DOCUMENT_TYPES",
    "DeidentifiedDicom",
    "DescribedFile",
    "FileDigest",
    "Source",
    "UidMap",
    "deidentify_dicom",
    "digest",
    "document_reference",
    "identifying_keywords",
    "imaging_study",
    "imaging_study_resource",
    "profile_vr",
    "read_dicom",
    "sniff_content_type",
]
