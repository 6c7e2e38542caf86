"""The audit trail as FHIR R4: ``AuditEvent`` per read, ``Consent`` per grant, ``Provenance``
per record registration — in one ``Bundle`` of type ``collection``.

What each resource says (docs/audit.md has the full mapping):

* **AuditEvent** (one per stored read receipt): a RESTful ``read`` (action ``R``, outcome ``0``)
  recorded at ``servedAt``; the agent is the provider (requestor), the entities are the record
  (identifier = record id, details: CID, blinded scope, request id, head block, batch root and
  the anchoring transaction) and the patient; the observer is the Kizuna proxy (the AccessLog
  contract it anchors into).
* **AuditEvent** of a refused read (one per recorded refusal, kizuna.services.refusals): the
  same ``read`` with outcome ``4`` (minor failure: refused, nothing disclosed), ``outcomeDesc``
  and a ``refusal-reason`` detail; one more per hour whose further refusals the rate limit only
  counted (``suppressed-count`` detail).
* **Consent** (one per grant state — each ``AccessGranted`` of a scope until it is replaced,
  revoked, ended by ``revokeAll`` or expires): patient, provider as a ``PRCP`` actor, the scope
  id *blinded* (the label is known only to the patient, so the auditor sees an opaque code),
  the period, status ``active`` (live now), ``inactive`` (ended) or ``rejected`` (dead at birth:
  made in the same block as a ``revokeAll``), and the grant and revoke transactions as
  identifiers.
* **Provenance** (one per registered record: each ``RecordRegistered``, and each record of a
  ``RecordBatchRegistered`` batch whose manifest rebuilds to the batch's root): the record as
  target, recorded at the block time, the patient as author, the ciphertext's CID as the
  ``source`` entity, the superseded record as a ``revision`` entity, and the registering
  transaction as an extension; a batch record also carries the ``record-batch`` extension (the
  batch root, the record's leaf index, the batch's count), so an auditor can fetch the manifest,
  check it rebuilds to that root on chain, and find the record's commitment in it.

Identifier systems (values are ``0x`` hex, EIP-55 addresses or CIDs, as the chain and the
store spell them), all under ``https://kizuna.health/fhir/``: ``ethereum-address``,
``ethereum-tx``, ``record-id``, ``cid``, ``blinded-scope``, ``record-batch``, ``deployment`` (the
Bundle's ``eip155:<chainId>:<ConsentLedger>``), and the extensions
``StructureDefinition/ethereum-tx`` and ``StructureDefinition/record-batch``.
docs/audit.md has the table.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from sqlalchemy import select

from kizuna.db import schema
from kizuna.errors import InputError
from kizuna.services.audit import (
    ChainHistory,
    ReceiptRow,
    Registration,
    load_receipts,
    service_history,
)
from kizuna.services.refusals import RefusalLog
from kizuna.wire.reads import RefusedRead, SuppressedRefusals

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.chain.index import EventIndex
    from kizuna.db import Database
    from kizuna.storage.store import ContentStore

BASE = "https://kizuna.health/fhir"
ADDRESS_SYSTEM = f"{BASE}/ethereum-address"
"""An Ethereum account (EIP-55 checksummed): patients, providers, contracts."""
TX_SYSTEM = f"{BASE}/ethereum-tx"
"""A transaction hash on the deployment's chain (see the Bundle's identifier)."""
RECORD_SYSTEM = f"{BASE}/record-id"
"""A Kizuna record id (32 random bytes registered in the ConsentLedger)."""
CID_SYSTEM = f"{BASE}/cid"
"""The CIDv1 of a record's encrypted envelope in the content store (IPFS-compatible)."""
SCOPE_SYSTEM = f"{BASE}/blinded-scope"
"""A scope id: the patient's keyed hash of a scope label, opaque to everyone else."""
DEPLOYMENT_SYSTEM = f"{BASE}/deployment"
"""``eip155:<chainId>:<ConsentLedger address>``: which chain and contracts the hashes refer to."""
TX_EXTENSION = f"{BASE}/StructureDefinition/ethereum-tx"
"""Extension (valueIdentifier) carrying the transaction of a resource that has no identifier."""
RECORD_BATCH_SYSTEM = f"{BASE}/record-batch"
"""The Merkle root of a batch of records registered together (``RecordBatchRegistered``)."""
RECORD_BATCH_EXTENSION = f"{BASE}/StructureDefinition/record-batch"
"""Extension of a batch record's Provenance: ``root`` (valueIdentifier), ``leaf-index`` and
``count`` (valueUnsignedInt)."""

_NAMESPACE = uuid.UUID("6b697a75-6e61-4175-8469-742f66686972")
_V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _instant(seconds: int) -> str:
    """A FHIR instant / dateTime (UTC, seconds)."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _in_period(resource: Mapping[str, Any], since: int | None, until: int | None) -> bool:
    """Whether ``resource``'s own time (``recorded``, or a Consent's ``dateTime``, as written
    by :func:`_instant`) lies in the period; a resource without one is kept only unbounded."""
    when = resource.get("recorded") or resource.get("dateTime")
    if not isinstance(when, str):
        return False
    t = int(datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    return (since is None or t >= since) and (until is None or t <= until)


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _account(address: str, display: str | None = None) -> dict[str, Any]:
    reference: dict[str, Any] = {"identifier": {"system": ADDRESS_SYSTEM, "value": address}}
    if display:
        reference["display"] = display
    return reference


def _tx(tx_hash: bytes, label: str) -> dict[str, Any]:
    return {"system": TX_SYSTEM, "value": _hex(tx_hash), "type": {"text": label}}


# -- AuditEvent ------------------------------------------------------------------------------


def audit_event(receipt: ReceiptRow, history: ChainHistory, *, cid: str | None,
                access_log: str) -> dict[str, Any]:
    """One read as an ``AuditEvent``."""
    anchor = history.anchors.get(receipt.batch_root) if receipt.batch_root else None
    details: list[dict[str, Any]] = [
        {"type": "scope-id", "valueString": _hex(receipt.scope_id)},
        {"type": "request-id", "valueString": _hex(receipt.request_id)},
        {"type": "head-block", "valueString": str(receipt.head_block)},
    ]
    if cid is not None:
        details.insert(0, {"type": "cid", "valueString": cid})
    if anchor is not None:
        details.append({"type": "batch-root", "valueString": _hex(anchor.args["root"])})
        details.append({"type": "anchor-tx", "valueString": _hex(anchor.tx_hash)})
    else:
        details.append({"type": "anchor-tx", "valueString": "pending"})
    record_ref: dict[str, Any] = {"identifier": {"system": RECORD_SYSTEM,
                                                 "value": _hex(receipt.record_id)}}
    if cid is not None:
        record_ref["display"] = f"encrypted record {cid}"
    return {
        "resourceType": "AuditEvent",
        "id": _id("read", receipt.request_id.hex()),
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                 "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read",
                     "display": "read"}],
        "action": "R",
        # issuedAt may be up to 120 s after servedAt (the provider's clock): never start > end
        "period": {"start": _instant(min(receipt.issued_at, receipt.served_at)
                                     if receipt.issued_at >= 0 else receipt.served_at),
                   "end": _instant(receipt.served_at)},
        "recorded": _instant(receipt.served_at),
        "outcome": "0",
        "agent": [{
            "type": {"coding": [{"system": _V3_PARTICIPATION, "code": "IRCP",
                                 "display": "information recipient"}]},
            "who": _account(receipt.provider, "provider"),
            "requestor": True,
        }],
        "source": {
            "observer": {**_account(access_log), "display": "Kizuna proxy (AccessLog)"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                      "code": "4", "display": "Application Server"}],
        },
        "entity": [
            {
                "what": record_ref,
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                         "code": "2", "display": "System Object"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                         "code": "4", "display": "Domain Resource"},
                "detail": details,
            },
            {
                "what": _account(receipt.patient, "patient"),
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                         "code": "1", "display": "Person"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                         "code": "1", "display": "Patient"},
            },
        ],
    }


def _refused_event(*, event_id: str, provider: str, patient: str | None, start: int, end: int,
                   description: str, record: dict[str, Any] | None,
                   details: list[dict[str, Any]], access_log: str) -> dict[str, Any]:
    """The shape of a refused read's ``AuditEvent``: a ``read`` with outcome ``4`` (minor
    failure: the request was refused, as an HTTP 403 is; nothing was disclosed)."""
    entities: list[dict[str, Any]] = []
    if record is not None or details:
        what: dict[str, Any] = {"what": record} if record is not None else {}
        entities.append({
            **what,
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                     "code": "4", "display": "Domain Resource"},
            "detail": details,
        })
    if patient is not None:
        entities.append({
            "what": _account(patient, "patient"),
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                     "code": "1", "display": "Patient"},
        })
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                 "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read",
                     "display": "read"}],
        "action": "R",
        "period": {"start": _instant(start), "end": _instant(end)},
        "recorded": _instant(end),
        "outcome": "4",
        "outcomeDesc": description,
        "agent": [{
            "type": {"coding": [{"system": _V3_PARTICIPATION, "code": "IRCP",
                                 "display": "information recipient"}]},
            "who": _account(provider, "provider"),
            "requestor": True,
        }],
        "source": {
            "observer": {**_account(access_log), "display": "Kizuna proxy (AccessLog)"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                      "code": "4", "display": "Application Server"}],
        },
    }
    if entities:
        resource["entity"] = entities
    return resource


def refused_audit_event(refusal: RefusedRead, *, access_log: str) -> dict[str, Any]:
    """One refused read (kizuna.services.refusals) as an ``AuditEvent`` with outcome ``4``."""
    return _refused_event(
        event_id=_id("refused-read", str(refusal.seq), refusal.provider,
                     bytes(refusal.record_id).hex()),
        provider=refusal.provider, patient=refusal.patient, start=refusal.refused_at,
        end=refusal.refused_at, description=f"read refused: {refusal.reason}",
        record={"identifier": {"system": RECORD_SYSTEM,
                               "value": _hex(refusal.record_id)}},
        details=[{"type": "refusal-reason", "valueString": refusal.reason},
                 {"type": "head-block", "valueString": str(refusal.head_block)}],
        access_log=access_log)


def suppressed_audit_event(counted: SuppressedRefusals, *, access_log: str) -> dict[str, Any]:
    """An hour's refused reads that the rate limit only counted, as one ``AuditEvent``."""
    scope = (f"of {counted.patient}'s records" if counted.patient is not None
             else "past the provider's hourly cap (patients not recorded)")
    return _refused_event(
        event_id=_id("refused-reads-suppressed", counted.provider, counted.patient or "",
                     str(counted.hour_start)),
        provider=counted.provider, patient=counted.patient, start=counted.hour_start,
        end=max(counted.hour_start, counted.last_at),
        description=f"{counted.count} further read(s) refused {scope} in this hour, counted "
                    "but not recorded one by one (rate limit)",
        record=None,
        details=[{"type": "suppressed-count", "valueString": str(counted.count)},
                 {"type": "head-block", "valueString": str(counted.last_block)}],
        access_log=access_log)


# -- Consent ---------------------------------------------------------------------------------


def consents(history: ChainHistory, *, now: int, patient: str | None = None,
             provider: str | None = None) -> list[dict[str, Any]]:
    """One ``Consent`` per grant state, oldest first (see the module doc for the statuses)."""
    out: list[tuple[int, int, dict[str, Any]]] = []
    for (who, to, scope), states in history.consent.grant_history():
        if (patient is not None and who != patient) or (provider is not None and to != provider):
            continue
        for position, state in enumerate(states):
            if state.expires_at is None:
                continue
            start = history.block_time(state.block_number)
            identifiers = [_tx(state.tx_hash, "grant")]
            # How it ended, by the ledger's rule (kizuna.chain.liveness); its expiry is below.
            ender = history.consent.end_of((who, to, scope), position)
            end: int | None = None
            status = "active"
            if ender is not None and ender.kind == "revoke-all-same-block":
                status = "rejected"
                end = start
                identifiers.append(_tx(ender.tx_hash, "revokeAll in the same block"))
            elif ender is not None:
                end = history.block_time(ender.block_number)
                label = {"revoke-all": "revokeAll", "revoke": "revoke",
                         "replaced": "replaced by grant"}[ender.kind]
                identifiers.append(_tx(ender.tx_hash, label))
            if status != "rejected":
                status = "active" if end is None and state.expires_at > now else "inactive"
                end = state.expires_at if end is None else min(end, state.expires_at)
            period: dict[str, str] = {"start": _instant(start)}
            if end is not None and end < 2**40:  # uint64 max ("forever") has no calendar date
                period["end"] = _instant(end)
            out.append((state.block_number, state.log_index, {
                "resourceType": "Consent",
                "id": _id("consent", who, to, scope.hex(), str(state.block_number),
                          str(state.log_index)),
                "identifier": identifiers,
                "status": status,
                "scope": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy", "display": "Privacy Consent"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0",
                                          "display": "Patient Consent"}]}],
                "patient": _account(who, "patient"),
                "dateTime": _instant(start),
                "policyRule": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "OPTIN", "display": "opt-in"}]},
                "provision": {
                    "type": "permit",
                    "period": period,
                    "actor": [{
                        "role": {"coding": [{"system": _V3_PARTICIPATION, "code": "PRCP",
                                             "display": "primary information recipient"}]},
                        "reference": _account(to, "provider"),
                    }],
                    "action": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                        "code": "access", "display": "Access"}]}],
                    "code": [{
                        "coding": [{"system": SCOPE_SYSTEM, "code": _hex(scope)}],
                        "text": "blinded scope id (the scope label is known only to the "
                                "patient)",
                    }],
                },
            }))
    out.sort(key=lambda item: (item[0], item[1]))
    return [resource for _, _, resource in out]


# -- Provenance ------------------------------------------------------------------------------


def provenances(history: ChainHistory, *, cids: Mapping[bytes, str],
                patient: str | None = None) -> list[dict[str, Any]]:
    """One ``Provenance`` per registered record (``UPDATE`` when it supersedes another): each
    record registered alone, and each record of a batch whose manifest the history holds."""
    supersedes = {bytes(e.args["newRecordId"]): bytes(old)
                  for old, e in history.superseded.items()}
    return [provenance(r, cid=cids.get(bytes(r.record_id)),
                       supersedes=supersedes.get(bytes(r.record_id)),
                       recorded=history.block_time(r.block_number))
            for r in history.registrations(patient=patient)]


def provenance(record: Registration, *, cid: str | None, supersedes: bytes | None,
               recorded: int) -> dict[str, Any]:
    """One record's registration as a ``Provenance``."""
    record_id = bytes(record.record_id)
    entity: list[dict[str, Any]] = []
    if cid is not None:
        entity.append({"role": "source", "what": {
            "identifier": {"system": CID_SYSTEM, "value": cid},
            "display": "the record's encrypted envelope"}})
    if supersedes is not None:
        entity.append({"role": "revision", "what": {
            "identifier": {"system": RECORD_SYSTEM, "value": _hex(supersedes)},
            "display": "the record this one supersedes"}})
    extension: list[dict[str, Any]] = [{"url": TX_EXTENSION, "valueIdentifier": {
        "system": TX_SYSTEM, "value": _hex(record.tx_hash)}}]
    display = f"commitment {_hex(bytes(record.commitment))}"
    if record.batch_root is not None:
        count = int(record.event.args["count"])
        extension.append({"url": RECORD_BATCH_EXTENSION, "extension": [
            {"url": "root", "valueIdentifier": {"system": RECORD_BATCH_SYSTEM,
                                                "value": _hex(record.batch_root)}},
            {"url": "leaf-index", "valueUnsignedInt": record.leaf_index},
            {"url": "count", "valueUnsignedInt": count}]})
        display += (f", leaf {record.leaf_index} of the {count} of batch "
                    f"{_hex(record.batch_root)}")
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        # a record id is registered alone once; in a batch, the root tells its registrations
        # apart (nothing on chain keeps two patients' batches from naming the same id)
        "id": (_id("provenance", record_id.hex()) if record.batch_root is None
               else _id("provenance", record_id.hex(), record.batch_root.hex())),
        "extension": extension,
        "target": [{"identifier": {"system": RECORD_SYSTEM, "value": _hex(record_id)},
                    "display": display}],
        "recorded": _instant(recorded),
        "activity": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": "UPDATE" if supersedes is not None else "CREATE"}]},
        "agent": [{
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": "author", "display": "Author"}]},
            "who": _account(record.patient, "patient"),
        }],
    }
    if entity:
        resource["entity"] = entity
    return resource


# -- the Bundle ------------------------------------------------------------------------------


def bundle(resources: Sequence[Mapping[str, Any]], *, chain_id: int, ledger: str,
           timestamp: int) -> dict[str, Any]:
    """A ``collection`` Bundle of ``resources`` (each with a ``urn:uuid`` fullUrl)."""
    return {
        "resourceType": "Bundle",
        "identifier": {"system": DEPLOYMENT_SYSTEM, "value": f"eip155:{chain_id}:{ledger}"},
        "type": "collection",
        "timestamp": _instant(timestamp),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": dict(r)} for r in resources],
    }


def export_bundle(chain: Chain, database: Database, *, store: ContentStore,
                  index: EventIndex | None = None, from_chain: bool = False,
                  patient: str | None = None, provider: str | None = None,
                  since: int | None = None, until: int | None = None) -> dict[str, Any]:
    """The audit trail (optionally of one patient and/or provider) as a FHIR R4 Bundle:
    AuditEvents of the reads, then Consents, then Provenances (``store``: where the service
    keeps the batches' manifests, each used only if it rebuilds to its on-chain root).
    ``since`` / ``until`` (Unix seconds, both included) keep the entries of a period: each
    resource by its own time (``recorded``, or a Consent's ``dateTime``)."""
    if since is not None and until is not None and since > until:
        raise InputError("until", f"{until} is before since ({since}): an empty period")
    history = service_history(chain, database, store, index=index, from_chain=from_chain)
    want_patient = to_checksum_address(patient) if patient else None
    want_provider = to_checksum_address(provider) if provider else None
    with database.read() as connection:
        cids = {bytes(r[0]): str(r[1]) for r in connection.execute(
            select(schema.records.c.record_id, schema.records.c.cid))}
    access_log = chain.deployment.addresses["AccessLog"]
    now = history.block_time(history.head_block)
    resources: list[dict[str, Any]] = []
    for receipt in load_receipts(database):
        if want_patient is not None and receipt.patient != want_patient:
            continue
        if want_provider is not None and receipt.provider != want_provider:
            continue
        resources.append(audit_event(receipt, history, cid=cids.get(bytes(receipt.record_id)),
                                     access_log=access_log))
    refusals = RefusalLog(database)
    resources.extend(refused_audit_event(r, access_log=access_log) for r in refusals.attempts(
        patient=want_patient, provider=want_provider, limit=1 << 62))
    resources.extend(suppressed_audit_event(c, access_log=access_log)
                     for c in refusals.suppressed(patient=want_patient, provider=want_provider))
    resources.extend(consents(history, now=now, patient=want_patient, provider=want_provider))
    if want_provider is None:
        resources.extend(provenances(history, cids=cids, patient=want_patient))
    if since is not None or until is not None:
        resources = [r for r in resources if _in_period(r, since, until)]
    return bundle(resources, chain_id=chain.chain_id,
                  ledger=chain.deployment.addresses["ConsentLedger"], timestamp=now)


__all__ = [
    "ADDRESS_SYSTEM",
    "CID_SYSTEM",
    "DEPLOYMENT_SYSTEM",
    "RECORD_BATCH_EXTENSION",
    "RECORD_BATCH_SYSTEM",
    "RECORD_SYSTEM",
    "SCOPE_SYSTEM",
    "TX_EXTENSION",
    "TX_SYSTEM",
    "audit_event",
    "bundle",
    "consents",
    "export_bundle",
    "provenance",
    "provenances",
    "refused_audit_event",
    "suppressed_audit_event",
]
