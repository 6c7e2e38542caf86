"""The proxy's memory: exactly the granted records, decrypted, and nothing else.

:meth:`GrantedCache.refresh` asks the service which records the provider may read *now*
(:meth:`GrantedSource.records`, decided from the chain head), drops every cached record that is
no longer among them (revoked, expired, superseded), and reads the ones it does not have yet —
each read a signed request, a consent check and a receipt in the service, then local
decryption. Refreshes run before an answer when the last one is older than ``ttl_s`` (0: before
every answer). If the service cannot be asked, the cache is emptied and the request fails (503):
the proxy never answers from a list of grants it could not confirm.

Decrypted resources live in this process's memory only — nothing is written to disk. Dropping a
record stops the proxy from serving it; it cannot make the provider forget what was already
served (Kizuna's honest-revocation rule: data already decrypted cannot be recalled).

Each resource is served with ``meta.versionId`` = its record id and ``meta.lastUpdated`` = the
record's registration (:func:`served_meta`): a new version of a resource is a new record that
supersedes the old one, so the versionId changes exactly when the content does.

References are made servable: Synthea and other bundles link resources with ``urn:uuid:``
references that only resolve inside their original Bundle. A reference to a resource the proxy
serves becomes ``Type/id``; a ``subject`` / ``patient`` / ``beneficiary`` reference of a record
becomes ``Patient/<the patient's id here>``; any other ``urn:`` reference (to something not
granted) is kept as a logical reference (``identifier`` = the URN, system
``urn:ietf:rfc:3986``), with its ``display``.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kizuna.errors import AccessDenied, IntegrityError, KizunaError, NotFoundError, StorageError
from kizuna.fhirproxy.source import GrantedSource
from kizuna.storage.fhir.canonical import CONTENT_TYPE
from kizuna.types import Address
from kizuna.wire.records import RecordInfo

log = logging.getLogger(__name__)

PATIENT_REFERENCE_ELEMENTS = frozenset({"subject", "patient", "beneficiary"})
ADDRESS_IDENTIFIER_SYSTEM = "https://kizuna.health/fhir/ethereum-address"


@dataclass(frozen=True)
class CachedResource:
    """One decrypted record: its owner, its record id and the resource as served (with the
    ``meta`` the proxy gives it: :func:`served_meta`)."""

    record_id: bytes
    patient: Address
    resource_type: str
    id: str
    resource: dict[str, Any]
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """What searches derive from the resource (its date range, its codes), computed once: the
    resource does not change while it is served (a refresh that changes anything builds new
    ones)."""

    @property
    def version_id(self) -> str:
        return str(self.resource["meta"]["versionId"])

    @property
    def last_updated(self) -> str | None:
        value = self.resource["meta"].get("lastUpdated")
        return value if isinstance(value, str) else None


@dataclass
class Snapshot:
    """What the proxy serves at one moment (rebuilt at each refresh; read-only afterwards)."""

    resources: list[CachedResource] = field(default_factory=list)
    by_key: dict[tuple[str, str], CachedResource] = field(default_factory=dict)
    patient_ids: dict[Address, str] = field(default_factory=dict)
    """Each patient's Patient id here: the granted Patient resource's id, else the address."""
    aliases: dict[str, Address] = field(default_factory=dict)
    """Lower-cased ids a ``patient=`` search may name → the patient: the address, the Patient
    id, and the ids the patient's records use for their subject."""

    def of_type(self, resource_type: str) -> list[CachedResource]:
        return [r for r in self.resources if r.resource_type == resource_type]

    def of_patient(self, patient: Address) -> list[CachedResource]:
        return [r for r in self.resources if r.patient == patient]

    def patient_of(self, reference: str) -> Address | None:
        """The patient a ``patient=`` / ``subject=`` value names (``id``, ``Patient/id``,
        ``urn:uuid:id`` or an absolute URL ending in ``Patient/id``), if any."""
        value = reference.strip()
        if value.startswith("urn:uuid:"):
            value = value[len("urn:uuid:"):]
        elif "/" in value:
            head, _, value = value.rpartition("/")
            if not (head == "Patient" or head.endswith("/Patient")):
                return None
        return self.aliases.get(value.lower())


MINIMAL_PATIENT_VERSION = "1"
"""The versionId of a minimal Patient: its content is a function of the address alone, so it
never changes."""


def served_meta(info: RecordInfo, stored: Any) -> dict[str, Any]:
    """The ``meta`` a record's resource is served with. The versions of a resource are records:
    a new version is a new record (fresh id) that supersedes the old one on-chain, and the proxy
    serves only the live one. So ``versionId`` is the record id (64 hex digits: a FHIR id), which
    changes exactly when the served content does and is the same after a restart, and
    ``lastUpdated`` the time the service stored the record (its registration). What the source
    system had in ``meta`` (``profile``, ``tag``, ``security``, ``source``) is kept; its own
    ``versionId`` / ``lastUpdated`` are replaced: they are this server's to assign."""
    kept = {k: v for k, v in stored.items() if k not in ("versionId", "lastUpdated")} \
        if isinstance(stored, dict) else {}
    when = datetime.fromtimestamp(info.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"versionId": bytes(info.record_id).hex(), "lastUpdated": when, **kept}


def minimal_patient(address: Address) -> dict[str, Any]:
    """The Patient served for a patient who did not grant their Patient resource: only the
    Ethereum address (as id and as identifier), so ``patient=`` searches have a target."""
    return {"resourceType": "Patient", "id": address,
            "identifier": [{"system": ADDRESS_IDENTIFIER_SYSTEM, "value": address}]}


class GrantedCache:
    """Exactly the granted FHIR records of the provider's patients (see the module docstring)."""

    def __init__(self, source: GrantedSource, *, ttl_s: float = 2.0, workers: int = 4,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.ttl_s = ttl_s
        self.workers = workers  # records read at once when many are new (after a start)
        self._clock = clock
        self._lock = threading.Lock()
        self._raw: dict[bytes, tuple[RecordInfo, dict[str, Any]]] = {}
        self._refused: set[bytes] = set()  # failed their integrity check: never retried
        self._snapshot = Snapshot()
        self._built_for: list[Address] | None = None  # the patients of the current snapshot
        self._refreshed_at: float | None = None
        self.reads = 0
        self.dropped = 0

    def snapshot(self) -> Snapshot:
        """The current view, refreshed first if older than ``ttl_s``."""
        with self._lock:
            now = self._clock()
            if self._refreshed_at is None or now - self._refreshed_at >= self.ttl_s:
                self._refresh_locked()
                self._refreshed_at = self._clock()
            return self._snapshot

    def refresh(self) -> Snapshot:
        """Refresh now, whatever the TTL."""
        with self._lock:
            self._refresh_locked()
            self._refreshed_at = self._clock()
            return self._snapshot

    def clear(self) -> None:
        """Forget every decrypted record (on shutdown, or when the service cannot be asked)."""
        with self._lock:
            self._clear_locked()

    def _clear_locked(self) -> None:
        self._raw.clear()
        self._snapshot = Snapshot()
        self._built_for = None
        self._refreshed_at = None

    def _refresh_locked(self) -> None:
        try:
            self._update_locked()
        except KizunaError:
            self._clear_locked()  # fail closed: never serve what could not be confirmed
            raise

    def _update_locked(self) -> None:
        patients = self.source.patients()
        live = {bytes(r.record_id): r for r in self.source.records()}
        changed = patients != self._built_for
        for record_id in [rid for rid in self._raw if rid not in live]:
            del self._raw[record_id]
            self.dropped += 1
            changed = True
        wanted = [info for record_id, info in live.items()
                  if record_id not in self._raw and record_id not in self._refused
                  # files (PDF, DICOM): their DocumentReference / ImagingStudy is served
                  and info.content_type.split(";")[0].strip().lower() == CONTENT_TYPE]
        if len(wanted) > 1 and self.workers > 1:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="fhir-proxy-read") as pool:
                results = list(pool.map(self._read, wanted))
        else:
            results = [self._read(info) for info in wanted]
        for info, resource in zip(wanted, results, strict=True):
            if resource is not None:
                self._raw[bytes(info.record_id)] = (info, resource)
                self.reads += 1
                changed = True
        if changed:  # the same grants, records and patients: the same snapshot (and memos)
            self._snapshot = _build(patients, self._raw.values())
            self._built_for = patients

    def _read(self, info: RecordInfo) -> dict[str, Any] | None:
        try:
            content = self.source.read(patient=info.patient, record_id=info.record_id)
        except (AccessDenied, NotFoundError) as exc:
            # revoked (or superseded) between the listing and the read: not served
            log.info("record 0x%s not read: %s", bytes(info.record_id).hex(), exc)
            return None
        except (IntegrityError, StorageError) as exc:
            self._refused.add(bytes(info.record_id))
            log.warning("record 0x%s refused: %s", bytes(info.record_id).hex(), exc)
            return None
        try:
            data = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            self._refused.add(bytes(info.record_id))
            log.warning("record 0x%s is not JSON", bytes(info.record_id).hex())
            return None
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            self._refused.add(bytes(info.record_id))
            return None
        return data


def _build(patients: list[Address],
           raw: Any) -> Snapshot:
    entries: list[tuple[RecordInfo, dict[str, Any]]] = sorted(
        raw, key=lambda item: (item[0].patient, item[0].created_at, bytes(item[0].record_id)))
    snap = Snapshot()
    owners = sorted(set(patients) | {info.patient for info, _ in entries})
    for info, data in entries:  # each patient's Patient id: their granted Patient resource's
        if data["resourceType"] == "Patient" and info.patient not in snap.patient_ids:
            snap.patient_ids[info.patient] = _id_of(info, data)
    for owner in owners:
        snap.patient_ids.setdefault(owner, owner)
        snap.aliases[owner.lower()] = owner
        snap.aliases[snap.patient_ids[owner].lower()] = owner
    ids: dict[str, str] = {}  # a resource's own id → its type, for urn:uuid references
    for info, data in entries:
        ids.setdefault(_id_of(info, data), data["resourceType"])
    for info, data in entries:
        for element, reference in _references(data):
            if element in PATIENT_REFERENCE_ELEMENTS and reference.startswith("urn:uuid:"):
                snap.aliases.setdefault(reference[len("urn:uuid:"):].lower(), info.patient)
    for info, data in entries:
        resource = copy.deepcopy(data)
        resource["id"] = _id_of(info, data)
        resource["meta"] = served_meta(info, data.get("meta"))
        _rewrite_references(resource, ids=ids, patient_id=snap.patient_ids[info.patient])
        key = (resource["resourceType"], resource["id"])
        if key in snap.by_key:
            log.warning("two records are %s/%s: serving the first", *key)
            continue
        cached = CachedResource(record_id=bytes(info.record_id), patient=info.patient,
                                resource_type=resource["resourceType"], id=resource["id"],
                                resource=resource)
        snap.resources.append(cached)
        snap.by_key[key] = cached
    for owner in owners:
        if ("Patient", snap.patient_ids[owner]) not in snap.by_key:
            resource = {**minimal_patient(owner), "meta": {"versionId": MINIMAL_PATIENT_VERSION}}
            cached = CachedResource(record_id=b"", patient=owner, resource_type="Patient",
                                    id=owner, resource=resource)
            snap.resources.append(cached)
            snap.by_key[("Patient", owner)] = cached
    return snap


def _id_of(info: RecordInfo, data: dict[str, Any]) -> str:
    """The resource's own id, or (a resource stored without one) its record id in hex."""
    value = data.get("id")
    return value if isinstance(value, str) and value else bytes(info.record_id).hex()


def _references(value: Any, element: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str):
            yield element, reference
        for key, item in value.items():
            if key != "contained":
                yield from _references(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item, element)


def _rewrite_references(value: Any, *, ids: dict[str, str], patient_id: str,
                        element: str = "") -> None:
    if isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str) and reference.startswith("urn:"):
            target = reference.rpartition(":")[2]
            if element in PATIENT_REFERENCE_ELEMENTS:
                value["reference"] = f"Patient/{patient_id}"
            elif reference.startswith("urn:uuid:") and target in ids:
                value["reference"] = f"{ids[target]}/{target}"
            else:
                del value["reference"]
                value.setdefault("identifier", {"system": "urn:ietf:rfc:3986",
                                                "value": reference})
        for key, item in value.items():
            if key != "contained":
                _rewrite_references(item, ids=ids, patient_id=patient_id, element=key)
    elif isinstance(value, list):
        for item in value:
            _rewrite_references(item, ids=ids, patient_id=patient_id, element=element)


__all__ = ["ADDRESS_IDENTIFIER_SYSTEM", "MINIMAL_PATIENT_VERSION", "CachedResource",
           "GrantedCache", "Snapshot", "minimal_patient", "served_meta"]
