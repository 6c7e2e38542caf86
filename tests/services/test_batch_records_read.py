"""Records registered in a batch through the service (kizuna.services.batches), then read like
records registered alone: the event index lists them (its manifest source is the service's
record_batches + content store), the service serves a granted provider's reads of them and the
provider decrypts them, a revoke or a new version ends that, and the registration block is the
batch's."""

from __future__ import annotations

import json

import pytest
from local_stack import LocalStack

from kizuna.access.check import GrantRevoked, NoGrant, RecordSuperseded
from kizuna.batch import BatchLeaf, BatchManifest
from kizuna.client.patient import PatientClient
from kizuna.crypto.commitment import commitment_of
from kizuna.services import records as record_service
from kizuna.services.batches import register_batch, stage_envelopes
from kizuna.types import RecordId
from kizuna.wire.batches import StagedEnvelope


def _import(stack: LocalStack, patient: PatientClient, labels: list[str]
            ) -> tuple[BatchManifest, dict[RecordId, bytes], int]:
    """Stage one resource per label and register them as one batch; the manifest, each
    record's plaintext, the batch's block."""
    items, plain = [], {}
    for i, label in enumerate(labels):
        body = json.dumps({"resourceType": label, "id": f"r{i}"}).encode()
        rid, sid, envelope = patient.seal(body, label=label, content_type="application/fhir+json")
        items.append(StagedEnvelope(record_id=rid, scope_id=sid,
                                    epoch=patient.scope_and_epoch(label)[1], envelope=envelope))
        plain[rid] = body
    infos = stage_envelopes(stack.ctx, patient=patient.address, items=items)
    manifest = BatchManifest.of(BatchLeaf(i.record_id, i.scope_id, s.commitment)
                                for i, s in zip(items, infos, strict=True))
    info = register_batch(stack.ctx, patient=patient.address, manifest=manifest.encode(),
                          registration=patient.sign_batch_registration(manifest),
                          relayer=stack.relayer)
    return manifest, plain, info.block_number


def test_a_batch_registered_through_the_service_reads_like_records_alone(stack: LocalStack) -> None:
    patient, provider = stack.patient(), stack.provider()
    labels = ["Observation", "Condition", "Observation", "MedicationRequest", "Observation"]
    manifest, plain, block = _import(stack, patient, labels)
    ids = [leaf.record_id for leaf in manifest.leaves]

    # The index has the batch's records, in the manifest's order, at the batch's block.
    indexed = stack.ctx.index.records_of(patient.address)
    assert [r.record_id for r in indexed] == ids
    assert {r.batch_root for r in indexed} == {manifest.root}
    assert stack.ctx.index.index.pending_batches() == []
    assert all(record_service.registered_block(stack.ctx, rid) == block for rid in ids)

    # Grants by scope: the provider lists and reads the Observations, nothing else.
    patient.grant(provider.address, ["Observation"], expires_at=stack.now() + 600)
    observations = [rid for rid, label in zip(ids, labels, strict=True)
                    if label == "Observation"]
    assert {r.record_id for r in provider.records(patient=patient.address)} == set(observations)
    for rid in observations:
        grant = provider.request_read(patient=patient.address, record_id=rid)
        leaf = manifest.leaves[manifest.index_of(rid)]
        assert (grant.record_id, grant.patient, grant.scope_id) == (
            rid, patient.address, leaf.scope_id)
        with stack.store.get(grant.cid) as stream:
            assert commitment_of(stream.read()) == leaf.commitment
        # and decrypted on the provider's side, the commitment checked against its own node
        assert provider.read(patient=patient.address, record_id=rid) == plain[rid]
    with pytest.raises(NoGrant):
        provider.request_read(patient=patient.address, record_id=ids[1])

    # A new version of a batch record: the old one is superseded for readers and the index.
    patient.replace_record(ids[0], b'{"resourceType": "Observation", "id": "r0 v2"}',
                           label="Observation", content_type="application/fhir+json")
    with pytest.raises(RecordSuperseded):
        provider.request_read(patient=patient.address, record_id=ids[0])
    assert ids[0] not in [r.record_id for r in stack.ctx.index.records_of(patient.address)]
    assert ids[0] not in [r.record_id for r in provider.records(patient=patient.address)]

    # Revoked: no more reads of the batch's records.
    patient.revoke(provider.address, "Observation")
    with pytest.raises(GrantRevoked):
        provider.request_read(patient=patient.address, record_id=ids[2])
