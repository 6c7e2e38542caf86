"""Research sharing with consent, the two client sides (docs/research.md).

* The patient (:func:`consent_to_study`): reads their own records of the chosen scope labels,
  makes the de-identified copy (:mod:`kizuna.research.deidentify`) with their study key,
  registers it as their own records in ONE batch under the study's scope
  (``ResearchStudy:<study id hex>``, blinded like any scope), grants that scope to the study's
  researcher in the consent ledger until the study's end, and records the research consent in
  the study registry (which checks that grant is live): by default a signed ``StudyConsent``
  the service's relayer submits (the patient pays no gas, as for grants), or the patient's own
  transaction (``relayed=False``). :func:`withdraw_from_study` revokes the
  grant (reads stop at once: the existing revoke path, with re-keying) and records the
  withdrawal, relayed from a signed ``StudyWithdrawal`` the same way (or ``relayed=False``).
* The researcher (:func:`read_study`, :func:`export_study`): for each patient whose consent is
  current, every record of the patient's study scope through the ordinary provider read path
  (signed request, access check, re-encryption, receipt), written as FHIR Bulk NDJSON.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kizuna.chain.agents.studies import Study
from kizuna.chain.eip712 import SignedAction
from kizuna.chain.models import TxReceipt
from kizuna.client.export import read_many
from kizuna.client.importer import Importer, ImportResult, ImportSource
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.crypto.scopes import scope_label
from kizuna.errors import InputError, IntegrityError, NotFoundError
from kizuna.research.deidentify import Deidentifier, deidentify_dicom_for_study, study_key
from kizuna.research.export import write_bulk_ndjson
from kizuna.storage.fhir.canonical import CONTENT_TYPE
from kizuna.storage.fhir.importer import ImportedRecord, record_for
from kizuna.types import Address, ScopeId, ScopeLabel

DICOM = "application/dicom"


def study_label(study_id: bytes) -> ScopeLabel:
    """The scope label of a patient's copy for a study: ``ResearchStudy:<64 hex>`` (a FHIR
    resource type and the id as category; blinded per patient like every label)."""
    if len(study_id) != 32:
        raise InputError("study", f"a study id is 32 bytes, got {len(study_id)}")
    return scope_label(f"ResearchStudy:{study_id.hex()}")


def parse_study_id(text: str) -> bytes:
    """A study id as typed: 64 hex digits, ``0x`` optional."""
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise InputError("study", "not hex: a study id is 64 hex digits") from None
    if len(raw) != 32:
        raise InputError("study", f"a study id is 32 bytes (64 hex digits), got {len(raw)}")
    return raw


def live_study(patient_or_chain: PatientClient | ProviderClient, study_id: bytes) -> Study:
    """The study, checked to exist and not to have ended."""
    chain = patient_or_chain.chain
    study = chain.studies.study(study_id)
    if study is None:
        raise NotFoundError(f"no study 0x{study_id.hex()} in the study registry")
    if study.ends_at <= chain.head().timestamp:
        raise InputError("study", f"the study ended at {study.ends_at} (unix time)")
    return study


@dataclass(frozen=True, slots=True)
class StudyShare:
    """What :func:`consent_to_study` did."""

    study_id: bytes
    scope_id: ScopeId
    labels: tuple[str, ...]
    resources: int
    """De-identified resources in the study copy."""
    left_out: int
    """Records not shared: people and places (Practitioner, Organization...) and contents
    that are neither FHIR JSON nor DICOM."""
    imported: ImportResult
    consent_tx: str

    def as_dict(self) -> dict[str, object]:
        return {"study": "0x" + self.study_id.hex(), "scope_id": "0x" + bytes(self.scope_id).hex(),
                "labels": list(self.labels), "resources": self.resources,
                "left_out": self.left_out, "registered": self.imported.registered,
                "consent_tx": self.consent_tx}


def _copy_records(patient: PatientClient, study_id: bytes,
                  labels: Sequence[str]) -> tuple[list[ImportedRecord], int]:
    """The de-identified copy of the patient's records of ``labels``, each as a record of the
    study's scope, and how many records were left out."""
    records = patient.records(labels=list(labels))
    key = study_key(patient.keys.wallet.decrypting_key, study_id)
    opened = list(read_many(patient, records))
    resources: list[dict[str, Any]] = []
    types: dict[str, str] = {}
    dicoms: list[bytes] = []
    left_out = 0
    for item in opened:
        kind = item.record.content_type
        assert item.content is not None  # read into memory: read_many got no destination
        if kind == CONTENT_TYPE:
            resource = json.loads(item.content)
            resources.append(resource)
            if isinstance(resource.get("id"), str):
                types[resource["id"]] = resource["resourceType"]
        elif kind == DICOM:
            dicoms.append(item.content)
        else:
            left_out += 1
    deid = Deidentifier(key, types=types)
    label = study_label(study_id)
    out: list[ImportedRecord] = []
    for resource in resources:
        copy = deid.resource(resource)
        if copy is None:
            left_out += 1
            continue
        out.append(replace(record_for(copy), scope_label=label))
    for content in dicoms:
        copy_bytes = deidentify_dicom_for_study(content, key)
        out.append(ImportedRecord(content=copy_bytes, resource_type="Media", scope_label=label,
                                  fhir_id=None, full_url=None, date=None, timestamp=None,
                                  references=(), content_type=DICOM))
    return out, left_out


class _Records(list[ImportedRecord]):
    """The copy as an import source's records (sized and iterable)."""


def _relay(patient: PatientClient, action: SignedAction, send_myself: str) -> TxReceipt:
    """Submit the patient's signed study registry action through the service's relayer
    (in-process or ``POST /wallet/relay``); ``send_myself`` names the command's own-transaction
    form for the error of a service without a relayer."""
    from kizuna.client.api_service import ApiService
    from kizuna.client.local import LocalService

    service = patient.service
    if isinstance(service, LocalService):
        if service.relayer is None:
            raise InputError("relay", f"this service has no relayer: {send_myself} with your "
                                      "own transaction (--send-myself)")
        return service.relayer.relay(action)
    if isinstance(service, ApiService):
        tx_hash, _ = service.api.relay(action)
        return patient.chain.sender.wait(tx_hash)
    raise TypeError(f"no relayer for {type(service).__name__}")


def _recorded(patient: PatientClient, receipt: TxReceipt, event: str, study_id: bytes,
              scope_id: ScopeId | None = None) -> TxReceipt:
    """``receipt`` when it holds the registry's ``event`` for THIS patient and study (and
    scope, when given); :class:`IntegrityError` otherwise."""
    for found in patient.chain.studies.events(receipt, event):
        if (bytes(found.args["studyId"]) == study_id
                and str(found.args["patient"]).lower() == patient.address.lower()
                and (scope_id is None or bytes(found.args["scopeId"]) == bytes(scope_id))):
            return receipt
    what = "consent" if event == "StudyConsented" else "withdrawal"
    raise IntegrityError(f"transaction 0x{receipt.tx_hash.hex()} records no such {what}")


def relay_consent(patient: PatientClient, study_id: bytes, scope_id: ScopeId) -> TxReceipt:
    """The patient signs ``StudyConsent`` and the service's relayer submits it (in-process or
    ``POST /wallet/relay``); the receipt, checked to record THIS consent."""
    typed = patient.chain.studies.consent_typed_data(
        patient=patient.address, study_id=study_id, scope_id=scope_id,
        deadline=patient._deadline())
    action = SignedAction(typed, patient.signer.sign_typed_data(typed))
    return _recorded(patient, _relay(patient, action, "consent"), "StudyConsented", study_id,
                     scope_id)


def relay_withdrawal(patient: PatientClient, study_id: bytes) -> TxReceipt:
    """The patient signs ``StudyWithdrawal`` and the service's relayer submits it (no gas for
    the patient, as for the consent); the receipt, checked to record THIS withdrawal."""
    typed = patient.chain.studies.withdrawal_typed_data(
        patient=patient.address, study_id=study_id, deadline=patient._deadline())
    action = SignedAction(typed, patient.signer.sign_typed_data(typed))
    return _recorded(patient, _relay(patient, action, "withdraw"), "StudyConsentWithdrawn",
                     study_id)


def consent_to_study(patient: PatientClient, study_id: bytes, labels: Sequence[str], *,
                     journal_root: Path, relayed: bool = True) -> StudyShare:
    """Share a de-identified copy of the records of ``labels`` with the study and consent
    (relayed, or with the patient's own transaction when ``relayed`` is false)."""
    study = live_study(patient, study_id)
    chosen = tuple(dict.fromkeys(str(scope_label(label)) for label in labels))
    if not chosen:
        raise InputError("scope", "choose at least one of the study's scopes")
    asked = set(study.scopes)
    extra = [label for label in chosen if label not in asked]
    if extra:
        raise InputError("scope", f"{', '.join(extra)} not asked for by the study "
                                  f"(it asks for {', '.join(study.scopes)})")
    if not patient.chain.registry.is_active_provider(study.researcher):
        raise InputError("study", f"its researcher {study.researcher} is not an active "
                                  "verified provider any more")
    copies, left_out = _copy_records(patient, study_id, chosen)
    if not copies:
        raise InputError("scope", f"no record of {', '.join(chosen)} to share")
    digest = hashlib.sha256(b"".join(hashlib.sha256(r.content).digest() for r in copies))
    source = ImportSource(name=f"study 0x{study_id.hex()[:12]}", digest=digest.digest(),
                          records=_Records(copies))
    imported = Importer(patient, journal_root=journal_root).run([source])
    label = study_label(study_id)
    patient.grant(study.researcher, [label], expires_at=study.ends_at)
    scope_id = patient.keys.scope_id(label)
    if relayed:
        receipt = relay_consent(patient, study_id, scope_id)
    else:
        receipt = patient.chain.studies.consent(study_id, scope_id, signer=patient.signer)
    return StudyShare(study_id=study_id, scope_id=scope_id, labels=chosen,
                      resources=len(copies), left_out=left_out, imported=imported,
                      consent_tx="0x" + bytes(receipt.tx_hash).hex())


def withdraw_from_study(patient: PatientClient, study_id: bytes, *,
                        relayed: bool = True) -> str:
    """Revoke the study's grant (reads stop now; the scope is re-keyed) and record the
    withdrawal in the study registry: by default a signed ``StudyWithdrawal`` the service
    relays (the revoke is relayed too, so a patient without ether can withdraw), or the
    patient's own transaction when ``relayed`` is false. Returns the withdrawal's transaction
    hash."""
    study = patient.chain.studies.study(study_id)
    if study is None:
        raise NotFoundError(f"no study 0x{study_id.hex()} in the study registry")
    consent = patient.chain.studies.consent_of(study_id, patient.address)
    if not consent.consented:
        raise InputError("study", "you have no current consent to this study")
    patient.revoke(study.researcher, study_label(study_id))
    if relayed:
        receipt = relay_withdrawal(patient, study_id)
    else:
        receipt = patient.chain.studies.withdraw(study_id, signer=patient.signer)
    return "0x" + bytes(receipt.tx_hash).hex()


def read_study(researcher: ProviderClient, study_id: bytes) -> Iterator[tuple[Address, bytes]]:
    """Every record of every currently consenting patient's study copy, read one by one
    through the provider read path (a signed request and a receipt each): (patient, content).
    A patient who withdrew is not asked; a read the ledger refuses raises as any read."""
    study = researcher.chain.studies.study(study_id)
    if study is None:
        raise NotFoundError(f"no study 0x{study_id.hex()} in the study registry")
    if study.researcher != researcher.address:
        raise InputError("study", f"registered by {study.researcher}, not by you")
    for consent in researcher.chain.studies.consenting_patients(study_id):
        for record in researcher.records(patient=consent.patient):
            if bytes(record.scope_id) != bytes(consent.scope_id):
                continue
            yield consent.patient, researcher.read(patient=consent.patient,
                                                   record_id=bytes(record.record_id))


def export_study(researcher: ProviderClient, study_id: bytes,
                 directory: str | os.PathLike[str]) -> dict[str, int]:
    """The cohort's shared FHIR data as Bulk NDJSON files in ``directory`` (DICOM copies as
    ``dicom/<sha256>.dcm``); returns the count per resource type (``"dicom"`` for files)."""
    out = Path(directory)
    dicoms = 0

    def resources() -> Iterator[dict[str, Any]]:
        nonlocal dicoms
        for _patient, content in read_study(researcher, study_id):
            if content[128:132] == b"DICM":
                (out / "dicom").mkdir(parents=True, exist_ok=True)
                (out / "dicom" / f"{hashlib.sha256(content).hexdigest()}.dcm").write_bytes(content)
                dicoms += 1
                continue
            resource: dict[str, Any] = json.loads(content)
            yield resource

    counts = write_bulk_ndjson(resources(), out)
    if dicoms:
        counts["dicom"] = dicoms
    return counts
