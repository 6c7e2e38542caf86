"""PDFs and images as DocumentReference; pydicom's test files as ImagingStudy; de-identification."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pydicom
import pytest
from fhir_data import tiny_pdf, tiny_png
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from kizuna.errors import InputError
from kizuna.storage.attachments import (
    BASIC_PROFILE,
    UidMap,
    deidentify_dicom,
    digest,
    document_reference,
    identifying_keywords,
    imaging_study,
    profile_vr,
    read_dicom,
    sniff_content_type,
)
from kizuna.storage.fhir.validate import validate

DICOM_FILES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "rtdose.dcm"]


def dicom_path(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom wheel does not ship {name}"
    return Path(str(path))


# --- documents ------------------------------------------------------------------------------


def test_pdf_becomes_a_document_reference(tmp_path: Path) -> None:
    pdf = tiny_pdf()
    path = tmp_path / "discharge-letter.pdf"
    path.write_bytes(pdf)
    when = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    described = document_reference(path, subject="Patient/example", date=when,
                                   created="2024-02-29T09:00:00+01:00")
    attachment = described.resource["content"][0]["attachment"]
    assert attachment == {
        "contentType": "application/pdf",
        "size": len(pdf),
        "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode(),
        "title": "discharge-letter.pdf",
        "creation": "2024-02-29T09:00:00+01:00",
    }
    assert "data" not in attachment  # the bytes stay separate (encrypted as they are)
    assert described.resource["date"] == "2024-03-01T12:30:00Z"
    assert described.record.scope_label == "DocumentReference"
    assert described.record.date == "2024-03-01T12:30:00Z"
    assert described.digest.sha256_hex == hashlib.sha256(pdf).hexdigest()
    validate(described.record.content)
    assert json.loads(described.record.content) == described.resource


def test_image_from_a_stream_and_from_bytes() -> None:
    png = tiny_png()
    from_stream = document_reference(io.BytesIO(png), subject="urn:uuid:1", title="Rash",
                                     resource_id="photo-1")
    from_bytes = document_reference(png, subject="urn:uuid:1", title="Rash",
                                    resource_id="photo-1",
                                    date=datetime.fromisoformat(from_stream.resource["date"]))
    assert from_stream.content_type == "image/png"
    assert from_stream.record.content == from_bytes.record.content


def test_document_errors_say_why() -> None:
    with pytest.raises(InputError, match="not a PDF or image"):
        document_reference(b"plain text", subject="Patient/p")
    with pytest.raises(InputError, match="the bytes are application/pdf, not image/png"):
        document_reference(tiny_pdf(), subject="Patient/p", content_type="image/png")
    with pytest.raises(InputError, match="imaging_study"):
        document_reference(dicom_path("CT_small.dcm"), subject="Patient/p")
    with pytest.raises(InputError, match="needs a timezone"):
        document_reference(tiny_pdf(), subject="Patient/p", date=datetime(2024, 1, 1))
    with pytest.raises(InputError, match="no timezone") as caught:
        document_reference(tiny_pdf(), subject="Patient/p", created="2024-01-01T10:00:00")
    assert caught.value.field == "created"
    with pytest.raises(InputError, match="cannot read"):
        document_reference("/nonexistent/file.pdf", subject="Patient/p")


def test_sniffing_and_digest_of_large_streams() -> None:
    assert sniff_content_type(tiny_pdf()) == "application/pdf"
    assert sniff_content_type(dicom_path("MR_small.dcm").read_bytes()[:132]) == "application/dicom"
    data = b"\xff\xd8\xff" + bytes(3 * 1024 * 1024)  # spans several read chunks
    measured = digest(io.BytesIO(data))
    assert measured.size == len(data)
    assert measured.sha1_base64 == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert sniff_content_type(measured.head) == "image/jpeg"


# --- DICOM → ImagingStudy -------------------------------------------------------------------


@pytest.mark.parametrize("name", DICOM_FILES)
def test_imaging_study_from_pydicom_test_files(name: str) -> None:
    path = dicom_path(name)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    record = imaging_study([path], subject="Patient/p1", resource_id="study-1")
    study = json.loads(record.content)
    assert record.scope_label == "ImagingStudy"
    assert study["identifier"][0]["value"] == f"urn:oid:{ds.StudyInstanceUID}"
    [series] = study["series"]
    assert series["uid"] == ds.SeriesInstanceUID
    assert series["modality"]["code"] == ds.Modality
    [instance] = series["instance"]
    assert instance["uid"] == ds.SOPInstanceUID
    assert instance["sopClass"]["code"] == f"urn:oid:{ds.SOPClassUID}"
    assert study["numberOfSeries"] == 1 and study["numberOfInstances"] == 1
    validate(record.content)


def test_started_has_the_dicom_timezone() -> None:
    record = imaging_study([dicom_path("CT_small.dcm")], subject="Patient/p1")
    # StudyDate 20040119, StudyTime 072730, TimezoneOffsetFromUTC -0500
    assert json.loads(record.content)["started"] == "2004-01-19T07:27:30-05:00"
    assert record.timestamp == datetime(2004, 1, 19, 12, 27, 30, tzinfo=UTC)


def test_body_site_and_several_series_of_one_study() -> None:
    first = read_dicom(dicom_path("CT_small.dcm"))
    second = read_dicom(dicom_path("CT_small.dcm"))  # a second series of the same study
    second.SeriesInstanceUID = second.SeriesInstanceUID + ".2"
    second.SOPInstanceUID = second.SOPInstanceUID + ".2"
    second.SeriesNumber = 2
    second.Modality = "SR"
    first.BodyPartExamined = "CHEST"
    study = json.loads(imaging_study([second, first], subject="Patient/p1").content)
    assert [s["number"] for s in study["series"]] == [1, 2]
    assert study["series"][0]["bodySite"] == {"display": "CHEST"}
    assert [m["code"] for m in study["modality"]] == ["CT", "SR"]
    assert study["numberOfSeries"] == 2 and study["numberOfInstances"] == 2


def test_imaging_study_errors() -> None:
    with pytest.raises(InputError, match="one study"):
        imaging_study([dicom_path("CT_small.dcm"), dicom_path("MR_small.dcm")], subject="P/1")
    with pytest.raises(InputError, match="not a readable DICOM file"):
        imaging_study([tiny_pdf()], subject="Patient/p1")
    with pytest.raises(InputError, match="no DICOM files"):
        imaging_study([], subject="Patient/p1")


# --- de-identification ----------------------------------------------------------------------


def _dummy(vr: str) -> object:
    """A plausible identifying value of a VR, to fill every profile attribute."""
    values: dict[str, object] = {
        "PN": "Doe^Jane", "DA": "19700101", "TM": "101010", "DT": "19700101101010",
        "UI": "1.2.3.4.5.6", "AS": "054Y", "DS": "70.5", "IS": "3", "US": 1, "SS": 1,
        "UL": 1, "FD": 1.0, "FL": 1.0, "CS": "SECRET", "AE": "STATION1",
    }
    if vr == "SQ":
        item = Dataset()
        item.CodeValue = "X1"
        return pydicom.sequence.Sequence([item])
    return values.get(vr, "Identifying text")


def fully_identified() -> Dataset:
    """CT_small with every attribute the profile lists set to an identifying value, plus a
    private tag inside a sequence and a UID reference from one file to another."""
    ds = read_dicom(dicom_path("CT_small.dcm"), pixels=True)
    for keyword in identifying_keywords():
        if keyword not in ds:
            vr = profile_vr(keyword).split(" or ")[0]
            setattr(ds, keyword, _dummy(vr))
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ref.add_new(0x00091010, "LO", "private in a sequence")
    ds.ReferencedImageSequence = pydicom.sequence.Sequence([ref])
    return ds


def test_deidentification_handles_every_listed_attribute() -> None:
    original = fully_identified()
    uids = UidMap()
    result = deidentify_dicom(original, uids=uids)
    ds = pydicom.dcmread(io.BytesIO(result.content))  # still a readable DICOM file
    for keyword, action in BASIC_PROFILE:
        if action == "X":
            assert keyword not in ds, keyword
        elif action == "Z":
            assert keyword in ds and not ds[keyword].value, keyword
        elif action == "D":
            assert ds[keyword].value in ("ANONYMOUS", "19000101", "000000", "19000101000000"), (
                keyword)
        else:
            assert ds[keyword].value != original[keyword].value, keyword
            assert str(ds[keyword].value).startswith("2.25."), keyword
    assert not [e for e in ds.iterall() if e.tag.is_private]
    assert ds.PatientIdentityRemoved == "YES"
    assert "Annex E" in ds.DeidentificationMethod
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    # consistent UIDs: the reference still points at this file's (new) SOP instance UID
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # nothing identifying is left anywhere in the bytes
    for secret in (b"Doe^Jane", b"CompressedSamples", b"JFK IMAGING", b"Identifying text"):
        assert secret not in result.content
    # what the profile keeps: the image itself, and what it is
    assert ds.PixelData == original.PixelData
    assert ds.Modality == "CT" and ds.SOPClassUID == original.SOPClassUID
    assert original.PatientName == "CompressedSamples^CT1"  # the input was not modified


PYDICOM_TEST_FILES = sorted(
    Path(str(dicom_path("CT_small.dcm"))).parent.glob("*.dcm"), key=lambda p: p.name
)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("path", PYDICOM_TEST_FILES, ids=lambda p: p.name)
def test_every_pydicom_test_file_deidentifies_or_is_refused_clearly(path: Path) -> None:
    try:
        result = deidentify_dicom(path, uids=UidMap())
    except InputError as refused:
        # Not DICOM Part 10 files (no preamble / file meta), or datasets without a SOP class:
        # refused with the reason, never half-written.
        assert refused.field == "file"
        assert "not a readable DICOM file" in refused.reason or "cannot write" in refused.reason
        return
    ds = pydicom.dcmread(io.BytesIO(result.content))
    assert ds.PatientIdentityRemoved == "YES"
    assert not [e for e in ds.iterall() if e.tag.is_private]
    names = {str(e.value) for e in ds.iterall() if e.VR == "PN" and e.value}
    assert names <= {"ANONYMOUS"}
    original = read_dicom(path)
    for keyword in ("PatientBirthDate", "StudyDate", "AccessionNumber", "ReferringPhysicianName"):
        if original.get(keyword):
            assert not ds.get(keyword), keyword


def test_uids_are_consistent_across_files_and_then_make_one_study() -> None:
    uids = UidMap()
    a = deidentify_dicom(dicom_path("CT_small.dcm"), uids=uids)
    b = deidentify_dicom(dicom_path("CT_small.dcm"), uids=uids)
    assert a.dataset.StudyInstanceUID == b.dataset.StudyInstanceUID
    other = deidentify_dicom(dicom_path("CT_small.dcm"), uids=UidMap())
    assert other.dataset.StudyInstanceUID != a.dataset.StudyInstanceUID  # keyed per map
    record = imaging_study([a.content], subject="Patient/p1")
    study = json.loads(record.content)
    assert study["identifier"][0]["value"] == f"urn:oid:{a.dataset.StudyInstanceUID}"
    assert "started" not in study  # StudyDate/StudyTime emptied by the profile


def test_options_keep_dates_and_pseudonym() -> None:
    result = deidentify_dicom(dicom_path("MR_small.dcm"), uids=UidMap(), keep_dates=True,
                              patient_pseudonym="KZ-0001")
    ds = pydicom.dcmread(io.BytesIO(result.content))
    assert ds.StudyDate == "20040826"
    assert ds.PatientName == "KZ-0001" and ds.PatientID == "KZ-0001"
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113106"]


def test_burned_in_annotation_is_refused_unless_accepted() -> None:
    ds = read_dicom(dicom_path("CT_small.dcm"), pixels=True)
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(InputError, match="burned-in annotation"):
        deidentify_dicom(ds, uids=UidMap())
    deidentify_dicom(ds, uids=UidMap(), allow_burned_in_annotation=True)
