"""The FHIR export of the audit trail: AuditEvents one for one with the reads, Consents per
grant state, Provenances per record, in a Bundle that validates (R4B models + Kizuna's checks)."""

from __future__ import annotations

import copy

import pytest
from audit_story import Story, scope

from kizuna.errors import FhirValidationError
from kizuna.services import audit, fhir_export
from kizuna.storage.fhir.validate import validate


def _resources(bundle: dict[str, object], kind: str) -> list[dict[str, object]]:
    entries = bundle["entry"]
    assert isinstance(entries, list)
    return [e["resource"] for e in entries if e["resource"]["resourceType"] == kind]


def _identifier(resource: dict[str, object], system: str) -> list[str]:
    values = resource.get("identifier", [])
    assert isinstance(values, list)
    return [i["value"] for i in values if i["system"] == system]


def test_bundle_validates(story: Story) -> None:
    bundle = fhir_export.export_bundle(story.chain, story.db, store=story.store, index=story.index)
    assert bundle["type"] == "collection"
    validated = validate(bundle)
    assert validated is not None
    kinds = sorted({e["resource"]["resourceType"] for e in bundle["entry"]})
    assert kinds == ["AuditEvent", "Consent", "Provenance"]


def test_a_broken_bundle_does_not_validate(story: Story) -> None:
    bundle = fhir_export.export_bundle(story.chain, story.db, store=story.store, index=story.index)
    broken = copy.deepcopy(bundle)
    del _resources(broken, "AuditEvent")[0]["source"]
    _resources(broken, "Provenance")[0]["recorded"] = "2026-13-45T00:00:00Z"
    with pytest.raises(FhirValidationError) as raised:
        validate(broken)
    paths = " ".join(path for path, _ in raised.value.issues)
    assert "source" in paths and "recorded" in paths


def test_audit_events_match_the_reads_one_for_one(story: Story) -> None:
    bundle = fhir_export.export_bundle(story.chain, story.db, store=story.store, index=story.index)
    every = _resources(bundle, "AuditEvent")
    events = [e for e in every if e["outcome"] == "0"]
    assert len(events) == len(story.reads)
    # the read refused after the revoke is an AuditEvent of its own, outcome 4 (refused)
    refused = [e for e in every if e["outcome"] == "4"]
    assert story.refused == ["GrantRevoked"] and len(refused) == 1
    assert {"type": "refusal-reason", "valueString": "revoked"} in \
        refused[0]["entity"][0]["detail"]  # type: ignore[index]
    history = audit.ChainHistory.from_index(story.chain, story.index)
    for read, event in zip(story.reads, events, strict=True):
        entity = event["entity"][0]
        details = {d["type"]: d["valueString"] for d in entity["detail"]}
        assert details["request-id"] == "0x" + read.request_id.hex()
        assert entity["what"]["identifier"]["value"] == "0x" + read.record_id.hex()
        assert details["cid"] == read.cid
        assert details["head-block"] == str(read.head_block)
        anchor = next(iter(history.anchors.values()))
        assert details["anchor-tx"] == "0x" + anchor.tx_hash.hex()
        assert event["agent"][0]["who"]["identifier"]["value"] == story.provider.address
        assert event["entity"][1]["what"]["identifier"]["value"] == story.patient.address
        assert event["action"] == "R" and event["outcome"] == "0"


def test_consents_follow_grants_and_revokes(story: Story) -> None:
    bundle = fhir_export.export_bundle(story.chain, story.db, store=story.store, index=story.index)
    consents = _resources(bundle, "Consent")
    by_scope = {c["provision"]["code"][0]["coding"][0]["code"]: c for c in consents}
    assert len(consents) == 2
    granted_a = by_scope["0x" + scope("A").hex()]
    revoked_b = by_scope["0x" + scope("B").hex()]
    assert granted_a["status"] == "active"
    assert revoked_b["status"] == "inactive"
    labels = [i["type"]["text"] for i in revoked_b["identifier"]]
    assert labels == ["grant", "revoke"]
    assert "end" in revoked_b["provision"]["period"]
    assert granted_a["provision"]["actor"][0]["reference"]["identifier"]["value"] == \
        story.provider.address


def test_provenance_per_record_with_cid_and_tx(story: Story) -> None:
    bundle = fhir_export.export_bundle(story.chain, story.db, store=story.store, index=story.index)
    provenances = _resources(bundle, "Provenance")
    assert len(provenances) == 2
    targets = {p["target"][0]["identifier"]["value"]: p for p in provenances}
    history = audit.ChainHistory.from_index(story.chain, story.index)
    for label, record_id in story.records.items():
        p = targets["0x" + record_id.hex()]
        assert p["entity"][0]["what"]["identifier"]["value"] == story.cids[label]
        tx = p["extension"][0]["valueIdentifier"]["value"]
        assert tx.startswith("0x") and len(tx) == 66
        if story.batch_root is None:
            event = history.records[bytes(record_id)]
            assert [e["url"] for e in p["extension"]] == [fhir_export.TX_EXTENSION]
        else:  # the batch's transaction and block, and the root to verify the record against
            [event] = history.batches.values()
            [batch] = [e for e in p["extension"]
                       if e["url"] == fhir_export.RECORD_BATCH_EXTENSION]
            parts = {x["url"]: x for x in batch["extension"]}
            assert parts["root"]["valueIdentifier"] == {
                "system": fhir_export.RECORD_BATCH_SYSTEM, "value": "0x" + story.batch_root.hex()}
            assert parts["count"]["valueUnsignedInt"] == 2
            assert parts["leaf-index"]["valueUnsignedInt"] == ["A", "B"].index(label)
        assert tx == "0x" + event.tx_hash.hex()
        assert p["recorded"] == fhir_export._instant(history.block_time(event.block_number))


def test_export_for_one_provider_and_from_chain(story: Story) -> None:
    stranger = "0x" + "33" * 20
    empty = fhir_export.export_bundle(story.chain, story.db, store=story.store,
                                      from_chain=True, provider=stranger)
    assert empty["entry"] == []
    mine = fhir_export.export_bundle(story.chain, story.db, store=story.store, from_chain=True,
                                     provider=story.provider.address)
    assert len(_resources(mine, "AuditEvent")) == 4 + 1  # the reads, the refused read
    assert _resources(mine, "Provenance") == []
    validate(mine)
