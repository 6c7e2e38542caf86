"""FHIR records and attachments through the next layers: blinded scopes and the envelope.

The path of a record reads straight down: import → scope label → blinded scope id, and canonical
bytes (or the file as it is) → envelope → the owner decrypts the same bytes.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path

import pydicom
import pytest
from fhir_data import tiny_pdf
from pydicom.data import get_testdata_file

from kizuna.crypto import pre
from kizuna.crypto.scopes import ScopeKey, blind_scope, covering_labels
from kizuna.crypto.scopes import parse_scope_label as crypto_parse_scope_label
from kizuna.storage.attachments import (
    DICOM_CONTENT_TYPE,
    UidMap,
    deidentify_dicom,
    document_reference,
    imaging_study,
)
from kizuna.storage.envelope import decrypt_bytes, encrypt_bytes, read_header
from kizuna.storage.fhir.importer import ImportedRecord, import_bundle
from kizuna.storage.fhir.scopes import all_labels
from kizuna.storage.fhir.validate import validate
from kizuna.types import RecordId


@pytest.fixture(scope="module")
def owner() -> pre.UmbralSecretKey:
    return pre.UmbralSecretKey.random()


@pytest.fixture(scope="module")
def synthea_records(synthea_large_file: Path) -> list[ImportedRecord]:
    return list(import_bundle(synthea_large_file.read_bytes()))


def _round_trip(owner: pre.UmbralSecretKey, plaintext: bytes, content_type: str) -> bytes:
    envelope = encrypt_bytes(plaintext, owner_key=owner.public_key,
                             record_id=RecordId(os.urandom(32)), content_type=content_type)
    assert read_header(bytes(envelope)).content_type == content_type
    return bytes(decrypt_bytes(envelope, owner_sk=owner))


def test_every_label_kizuna_produces_is_a_label_the_crypto_layer_blinds(
    synthea_records: list[ImportedRecord],
) -> None:
    key = ScopeKey(secrets.token_bytes(32))
    labels = set(all_labels()) | {r.scope_label for r in synthea_records}
    ids = set()
    for label in labels:
        parsed = crypto_parse_scope_label(label)
        assert parsed.label == label
        assert covering_labels(label)[-1] == label.partition(":")[0]
        scope_id = blind_scope(key, label)
        assert len(scope_id) == 32 and scope_id == blind_scope(key, label)
        ids.add(scope_id)
    assert len(ids) == len(labels)  # no two labels share a scope id


def test_synthea_records_round_trip_through_the_envelope(
    owner: pre.UmbralSecretKey, synthea_records: list[ImportedRecord]
) -> None:
    one_per_label: dict[str, ImportedRecord] = {}
    for record in synthea_records:
        one_per_label.setdefault(record.scope_label, record)
    for record in one_per_label.values():
        plaintext = _round_trip(owner, record.content, record.content_type)
        assert plaintext == record.content
        assert validate(plaintext).resource_type == record.resource_type


def test_pdf_and_its_document_reference_round_trip(owner: pre.UmbralSecretKey) -> None:
    pdf = tiny_pdf("round trip")
    described = document_reference(pdf, subject="Patient/p1", title="Letter")
    assert _round_trip(owner, pdf, described.content_type) == pdf  # the file, as it is
    record = described.record
    assert _round_trip(owner, record.content, record.content_type) == record.content


def test_deidentified_dicom_round_trips_and_still_matches_its_study(
    owner: pre.UmbralSecretKey,
) -> None:
    path = get_testdata_file("MR_small.dcm", download=False)
    assert path is not None
    clean = deidentify_dicom(str(path), uids=UidMap())
    plaintext = _round_trip(owner, clean.content, DICOM_CONTENT_TYPE)
    assert plaintext == clean.content
    ds = pydicom.dcmread(io.BytesIO(plaintext))
    assert ds.PatientIdentityRemoved == "YES" and ds.PatientName == ""
    study = json.loads(imaging_study([plaintext], subject="Patient/p1").content)
    assert study["series"][0]["instance"][0]["uid"] == ds.SOPInstanceUID
