"""The patient's side of sharing: read the own records (decrypted here), build the IPS, encrypt
what a link shares under a fresh key and register the link with the service.

Only the JWE files and the link's rules travel to the service; the key stays in the
``shlink:/`` link this returns, which the patient hands on (a QR code, a message).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kizuna.client.export import is_fhir, read_many, resources_of
from kizuna.errors import InputError
from kizuna.sharing.ips import build_ips
from kizuna.sharing.shl import LinkPayload, encrypt_jwe, new_key

if TYPE_CHECKING:
    from kizuna.client.http import ApiClient
    from kizuna.client.patient import PatientClient

FHIR_JSON = "application/fhir+json"


def own_resources(client: PatientClient, *, record_ids: Sequence[bytes] | None = None,
                  workers: int = 4) -> list[dict[str, Any]]:
    """The patient's FHIR resources, decrypted here (the bulk read of
    :mod:`kizuna.client.export`, each envelope checked against the chain): every FHIR record,
    or the records named by ``record_ids`` (each must be the patient's own FHIR record)."""
    records = [r for r, _ in client.labelled_records()]
    if record_ids is not None:
        by_id = {bytes(r.record_id): r for r in records}
        chosen = []
        for i, rid in enumerate(record_ids):
            record = by_id.get(bytes(rid))
            if record is None:
                raise InputError(f"records[{i}]", f"0x{bytes(rid).hex()} is not one of your "
                                                  "records")
            if not is_fhir(record):
                raise InputError(f"records[{i}]", "is a file, not a FHIR record: only FHIR "
                                                  "records can be shared in a link")
            chosen.append(record)
        records = chosen
    else:
        records = [r for r in records if is_fhir(r)]
    out: list[dict[str, Any]] = []
    for opened in read_many(client, records, workers=workers):
        for raw in resources_of(opened):
            out.append(json.loads(raw))
    return out


def own_ips(client: PatientClient, *, workers: int = 4) -> dict[str, Any]:
    """The International Patient Summary of every FHIR record of the patient's."""
    return build_ips(own_resources(client, workers=workers))


@dataclass(frozen=True, slots=True)
class Shared:
    """A link made: its ``shlink:/`` URI (holds the key: hand it only to the reader) and what
    the service answered (id, flag, expiry, ...)."""

    uri: str
    link: dict[str, Any]


def share(api: ApiClient, base_url: str, documents: Sequence[dict[str, Any]], *,
          label: str | None = None, expires_at: int | None = None,
          passcode: str | None = None, max_attempts: int = 5,
          direct: bool = False) -> Shared:
    """Encrypt ``documents`` (FHIR JSON: an IPS Bundle, or chosen resources) under a new key,
    register them as a link, and return the link. ``base_url`` is the service's address as
    the reader will reach it (the manifest URL in the link)."""
    if not documents:
        raise InputError("documents", "nothing to share")
    key = new_key()
    files = [{"content_type": FHIR_JSON,
              "jwe": encrypt_jwe(json.dumps(d, separators=(",", ":")).encode(), key,
                                 content_type=FHIR_JSON)} for d in documents]
    body: dict[str, Any] = {"files": files, "label": label, "expires_at": expires_at,
                            "passcode": passcode, "max_attempts": max_attempts,
                            "direct": direct}
    link = api.create_link({k: v for k, v in body.items() if v is not None})
    payload = LinkPayload(url=base_url.rstrip("/") + str(link["path"]), key=key,
                          exp=expires_at, flag=str(link["flag"]), label=label)
    return Shared(uri=payload.uri(), link=link)


def records_bundle(resources: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Chosen resources as one FHIR ``collection`` Bundle (one file of a link)."""
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in resources]}


__all__ = ["Shared", "own_ips", "own_resources", "records_bundle", "share"]
