"""kizuna.services.batches on the real stack (anvil, deployed contracts, embedded store, SQLite):
stage envelopes, register them under one Merkle root in one transaction, and every way that
can fail without leaving anything half-registered."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator

import pytest
from hexbytes import HexBytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from local_stack import LocalStack
from sqlalchemy import func, select

from kizuna.batch import BatchLeaf, BatchManifest, proof_leads_to, unpack_proof
from kizuna.chain.eip712 import SignedAction
from kizuna.client.patient import PatientClient
from kizuna.db.schema import records as records_table
from kizuna.db.schema import staged_envelopes
from kizuna.errors import (
    ConflictError,
    ContractReverted,
    InputError,
    NodeUnreachable,
    QuotaExceeded,
    StorageError,
)
from kizuna.services import batches
from kizuna.services.batches import (
    parse_frames,
    register_batch,
    stage_envelopes,
    staged_ids,
    sweep_staged,
)
from kizuna.services.quotas import StorageQuota, stored_by
from kizuna.types import Commitment, RecordId, ScopeId
from kizuna.wire.batches import StagedEnvelope, StagedInfo, frame_envelopes
from kizuna.wire.records import EnvelopeTooLarge


def _sealed(patient: PatientClient, count: int, *, label: str = "Observation"
            ) -> list[StagedEnvelope]:
    items = []
    for i in range(count):
        body = json.dumps({"resourceType": "Observation", "id": f"o{i}"}).encode()
        rid, sid, envelope = patient.seal(body, label=label,
                                          content_type="application/fhir+json")
        items.append(StagedEnvelope(record_id=rid, scope_id=sid,
                                    epoch=patient.scope_and_epoch(label)[1], envelope=envelope))
    return items


def _manifest(items: list[StagedEnvelope], infos: list[StagedInfo]) -> BatchManifest:
    return BatchManifest.of(BatchLeaf(i.record_id, i.scope_id, s.commitment)
                            for i, s in zip(items, infos, strict=True))


def _rows(stack: LocalStack, table: object, patient: str) -> int:
    with stack.ctx.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(  # type: ignore[arg-type]
            table.c.patient == patient)).scalar_one())  # type: ignore[attr-defined]


def _relayer_nonce(stack: LocalStack) -> int:
    return int(stack.chain.w3.eth.get_transaction_count(stack.relayer.signer.address))


def test_a_thousand_records_staged_and_registered_in_one_transaction(stack: LocalStack) -> None:
    patient = stack.patient()
    items = _sealed(patient, 1000)
    used_before = stored_by(stack.ctx.db, patient.address)
    infos = stage_envelopes(stack.ctx, patient=patient.address, items=items)
    assert [i.record_id for i in infos] == [i.record_id for i in items]
    assert staged_ids(stack.ctx, patient=patient.address) == {i.record_id for i in items}
    staged_usage = stored_by(stack.ctx.db, patient.address)
    assert staged_usage.count == used_before.count + 1000  # staged envelopes count in the quota
    manifest = _manifest(items, infos)
    signed = patient.sign_batch_registration(manifest)
    nonce = _relayer_nonce(stack)
    info = register_batch(stack.ctx, patient=patient.address, manifest=manifest.encode(),
                          registration=signed, relayer=stack.relayer)
    assert _relayer_nonce(stack) == nonce + 1  # one transaction for the thousand records
    assert (info.root, info.count) == (manifest.root, 1000)
    status = stack.chain.ledger.batch_of(manifest.root)
    assert status is not None and status.patient == patient.address and status.count == 1000
    receipt = stack.chain.w3.eth.get_transaction_receipt(HexBytes(info.tx_hash))
    assert receipt["blockNumber"] == info.block_number
    rows = {r.record_id: r for r in stack.service.list_records(patient=patient.address)}
    assert len(rows) == 1000
    for index, leaf in enumerate(manifest.leaves):
        row = rows[leaf.record_id]
        assert (row.batch_root, row.leaf_index, row.commitment) == (
            manifest.root, index, leaf.commitment)
        assert row.proof is not None
        assert proof_leads_to(manifest.root, leaf, unpack_proof(row.proof))
    assert staged_ids(stack.ctx, patient=patient.address) == set()
    assert stored_by(stack.ctx.db, patient.address) == staged_usage  # moved, not added
    # the event index projected the batch's records at once (the service told it)
    indexed = {r.record_id: r for r in stack.ctx.index.index.records_of(patient.address)}
    assert {leaf.record_id for leaf in manifest.leaves} <= set(indexed)
    assert indexed[manifest.leaves[7].record_id].commitment == manifest.leaves[7].commitment
    owner, data = batches.batch_manifest(stack.ctx, root=manifest.root)
    assert owner == patient.address and data == manifest.encode()
    # the records read back as any record does
    first = items[0]
    assert json.loads(patient.read_own(first.record_id)) == {"resourceType": "Observation",
                                                              "id": "o0"}
    # the same request again (an answer lost after the rows were written): the same answer
    again = register_batch(stack.ctx, patient=patient.address, manifest=manifest,
                           registration=signed, relayer=stack.relayer)
    assert again == info and _relayer_nonce(stack) == nonce + 1


def test_a_lost_answer_finishes_without_a_second_transaction(stack: LocalStack) -> None:
    patient = stack.patient()
    items = _sealed(patient, 5)
    infos = stage_envelopes(stack.ctx, patient=patient.address, items=items)
    manifest = _manifest(items, infos)
    signed = patient.sign_batch_registration(manifest)
    sent = stack.relayer.relay(signed)  # reached the chain; the service never heard back
    nonce = _relayer_nonce(stack)
    info = register_batch(stack.ctx, patient=patient.address, manifest=manifest,
                          registration=signed, relayer=stack.relayer)
    assert _relayer_nonce(stack) == nonce
    assert (info.block_number, info.tx_hash) == (sent.block_number, bytes(sent.tx_hash))
    assert _rows(stack, records_table, patient.address) == 5
    assert _rows(stack, staged_envelopes, patient.address) == 0


def test_the_node_down_mid_way_leaves_everything_staged_and_a_retry_finishes(
        stack: LocalStack) -> None:
    patient = stack.patient()
    items = _sealed(patient, 4)
    infos = stage_envelopes(stack.ctx, patient=patient.address, items=items)
    manifest = _manifest(items, infos)
    signed = patient.sign_batch_registration(manifest)
    stack.node.stop()
    try:
        with pytest.raises(NodeUnreachable):
            register_batch(stack.ctx, patient=patient.address, manifest=manifest,
                           registration=signed, relayer=stack.relayer)
    finally:
        stack.node.start()
    assert _rows(stack, records_table, patient.address) == 0
    assert staged_ids(stack.ctx, patient=patient.address) == {i.record_id for i in items}
    assert all(stack.store.has(i.cid) and i.cid in stack.store.pins() for i in infos)
    info = register_batch(stack.ctx, patient=patient.address, manifest=manifest,
                          registration=signed, relayer=stack.relayer)
    assert info.count == 4 and _rows(stack, records_table, patient.address) == 4


def test_the_store_failing_after_the_chain_is_finished_by_a_retry(stack: LocalStack) -> None:
    """The chain confirmed, then the manifest could not be stored: nothing is in ``records``,
    the envelopes are still staged, and the retry finishes without a second transaction."""
    patient = stack.patient()
    items = _sealed(patient, 3)
    infos = stage_envelopes(stack.ctx, patient=patient.address, items=items)
    manifest = _manifest(items, infos)
    signed = patient.sign_batch_registration(manifest)
    tmp = stack.store.root / "tmp"
    aside = tmp.rename(stack.store.root / "tmp-aside")
    tmp.write_bytes(b"")  # a file where the store stages its writes: every put fails (as root)
    try:
        with pytest.raises(StorageError, match="store"):
            register_batch(stack.ctx, patient=patient.address, manifest=manifest,
                           registration=signed, relayer=stack.relayer)
    finally:
        tmp.unlink()
        aside.rename(tmp)
    assert stack.chain.ledger.batch_of(manifest.root) is not None
    assert _rows(stack, records_table, patient.address) == 0
    assert len(staged_ids(stack.ctx, patient=patient.address)) == 3
    nonce = _relayer_nonce(stack)
    register_batch(stack.ctx, patient=patient.address, manifest=manifest, registration=signed,
                   relayer=stack.relayer)
    assert _relayer_nonce(stack) == nonce and _rows(stack, records_table, patient.address) == 3


def test_leaves_must_be_this_patients_staged_envelopes(stack: LocalStack) -> None:
    patient, other = stack.patient(), stack.patient()
    items = _sealed(patient, 3)
    infos = stage_envelopes(stack.ctx, patient=patient.address, items=items)
    leaves = [BatchLeaf(i.record_id, i.scope_id, s.commitment) for i, s in zip(items, infos,
                                                                              strict=True)]

    def refused(bad: list[BatchLeaf], who: PatientClient = patient) -> InputError:
        manifest = BatchManifest.of(bad)
        with pytest.raises(InputError) as caught:
            register_batch(stack.ctx, patient=who.address, manifest=manifest,
                           registration=who.sign_batch_registration(manifest),
                           relayer=stack.relayer)
        return caught.value

    unknown = BatchLeaf(RecordId(os.urandom(32)), leaves[0].scope_id, leaves[0].commitment)
    assert refused([leaves[0], unknown]).field == "leaves[1].record_id"
    other_scope = dataclasses.replace(leaves[2], scope_id=ScopeId(os.urandom(32)))
    assert refused([leaves[0], leaves[1], other_scope]).field == "leaves[2].scope_id"
    other_commitment = dataclasses.replace(leaves[1], commitment=Commitment(os.urandom(32)))
    assert refused([other_commitment]).field == "leaves[0].commitment"
    assert refused(leaves, who=other).field == "leaves[0].record_id"  # not theirs
    with pytest.raises(InputError) as garbage:
        register_batch(stack.ctx, patient=patient.address, manifest=b"KZBATCH\x01\x00",
                       registration=patient.sign_batch_registration(BatchManifest.of(leaves)))
    assert garbage.value.field == "manifest"
    assert _rows(stack, records_table, patient.address) == 0
    assert len(staged_ids(stack.ctx, patient=patient.address)) == 3


def test_the_signature_must_name_this_patient_root_and_count(stack: LocalStack) -> None:
    patient, other = stack.patient(), stack.patient()
    items = _sealed(patient, 3)
    infos = stage_envelopes(stack.ctx, patient=patient.address, items=items)
    manifest = _manifest(items, infos)
    smaller = _manifest(items[:2], infos[:2])

    def signed_for(who: PatientClient, root: bytes, count: int) -> SignedAction:
        typed = stack.chain.ledger.register_batch_typed_data(
            patient=who.address, root=root, count=count, deadline=stack.now() + 3600)
        return SignedAction(typed, who.signer.sign_typed_data(typed))

    cases = {"another batch root": signed_for(patient, smaller.root, 3),
             "another record count": signed_for(patient, manifest.root, 2),
             "patient": signed_for(other, manifest.root, 3)}
    for words, action in cases.items():
        with pytest.raises(InputError, match=words) as caught:
            register_batch(stack.ctx, patient=patient.address, manifest=manifest,
                           registration=action, relayer=stack.relayer)
        assert caught.value.field == "signature"
    record_sig = patient.sign_registration(record_id=items[0].record_id,
                                           scope_id=items[0].scope_id,
                                           envelope=bytes(items[0].envelope))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="RegisterRecord signature cannot register a batch"):
        register_batch(stack.ctx, patient=patient.address, manifest=manifest,
                       registration=record_sig, relayer=stack.relayer)
    expired = patient.sign_batch_registration(manifest, deadline=stack.now() - 1)
    with pytest.raises(ContractReverted, match="Expired"):
        register_batch(stack.ctx, patient=patient.address, manifest=manifest,
                       registration=expired, relayer=stack.relayer)
    assert stack.chain.ledger.batch_of(manifest.root) is None
    assert _rows(stack, records_table, patient.address) == 0
    assert len(staged_ids(stack.ctx, patient=patient.address)) == 3


def test_staging_checks_each_envelope_and_keeps_nothing_of_a_failed_request(
        stack: LocalStack) -> None:
    patient = stack.patient()
    items = _sealed(patient, 4)
    pins = set(stack.store.pins())

    def refused(bad: list[StagedEnvelope], error: type[Exception] = InputError) -> Exception:
        with pytest.raises(error) as caught:
            stage_envelopes(stack.ctx, patient=patient.address, items=bad)
        assert staged_ids(stack.ctx, patient=patient.address) == set()
        assert set(stack.store.pins()) == pins
        return caught.value

    # the envelope's preamble names another record
    swapped = dataclasses.replace(items[2], envelope=items[3].envelope)
    error = refused([items[0], items[1], swapped])
    assert isinstance(error, InputError) and error.field == "envelopes[2].envelope"
    # not an envelope at all
    error = refused([items[0], dataclasses.replace(items[1], envelope=b"garbage" * 20)])
    assert isinstance(error, InputError) and error.field.startswith("envelopes[1]")
    # the same id twice in one request
    error = refused([items[0], items[0]])
    assert isinstance(error, InputError) and error.field == "envelopes[1].record_id"
    # an old key epoch
    error = refused([items[0], dataclasses.replace(items[1], epoch=7)], ConflictError)
    assert "envelopes[1]" in str(error) and "epoch" in str(error)
    # too large for the limit
    with pytest.raises(EnvelopeTooLarge) as large:
        stage_envelopes(stack.ctx, patient=patient.address, items=items, max_size=100)
    assert large.value.field == "envelopes[0].envelope"
    # too many for one request
    with pytest.raises(InputError, match="at most 3 envelopes"):
        stage_envelopes(stack.ctx, patient=patient.address, items=items, max_items=3)
    assert staged_ids(stack.ctx, patient=patient.address) == set()
    assert set(stack.store.pins()) == pins


def test_an_id_that_is_a_record_or_staged_by_someone_else_is_a_conflict(stack: LocalStack) -> None:
    patient, other = stack.patient(), stack.patient()
    info = patient.add_record(b'{"resourceType":"Patient"}', label="Patient",
                              content_type="application/fhir+json")
    items = _sealed(patient, 2)
    rid, sid, envelope = patient.seal(b"{}", label="Observation",
                                      content_type="application/fhir+json",
                                      record_id=info.record_id)
    taken = StagedEnvelope(rid, sid, patient.scope_and_epoch("Observation")[1], envelope)
    with pytest.raises(ConflictError, match=r"envelopes\[1\].*registered already"):
        stage_envelopes(stack.ctx, patient=patient.address, items=[items[0], taken])
    assert staged_ids(stack.ctx, patient=patient.address) == set()
    stage_envelopes(stack.ctx, patient=patient.address, items=items)
    theirs = _sealed(other, 1)[0]
    # the other patient's envelope under one of this patient's staged ids
    rid2, sid2, env2 = other.seal(b"{}", label="Observation",
                                  content_type="application/fhir+json",
                                  record_id=items[0].record_id)
    clash = StagedEnvelope(rid2, sid2, other.scope_and_epoch("Observation")[1], env2)
    with pytest.raises(ConflictError, match="staged by someone else"):
        stage_envelopes(stack.ctx, patient=other.address, items=[theirs, clash])
    assert staged_ids(stack.ctx, patient=other.address) == set()
    # restaging one's own id replaces it (a resumed import re-encrypted it)
    again = _sealed(patient, 1)[0]
    rid3, sid3, env3 = patient.seal(b'{"v":2}', label="Observation",
                                    content_type="application/fhir+json",
                                    record_id=items[1].record_id)
    old_cid = _staged_cid(stack, items[1].record_id)
    replaced = stage_envelopes(stack.ctx, patient=patient.address, items=[
        again, StagedEnvelope(rid3, sid3, items[1].epoch, env3)])
    assert _staged_cid(stack, items[1].record_id) == replaced[1].cid != old_cid
    assert old_cid not in stack.store.pins()
    assert len(staged_ids(stack.ctx, patient=patient.address)) == 3


def _staged_cid(stack: LocalStack, record_id: bytes) -> str:
    with stack.ctx.db.read() as conn:
        return str(conn.execute(select(staged_envelopes.c.cid).where(
            staged_envelopes.c.record_id == record_id)).scalar_one())


def test_the_storage_quota_counts_staged_envelopes(stack: LocalStack) -> None:
    patient = stack.patient()
    items = _sealed(patient, 3)
    size = len(items[0].envelope)  # type: ignore[arg-type]
    tight = dataclasses.replace(stack.ctx, quota=StorageQuota(max_records=0,
                                                              max_bytes=2 * size + size // 2))
    with pytest.raises(QuotaExceeded) as bytes_refused:
        stage_envelopes(tight, patient=patient.address, items=items)
    assert bytes_refused.value.quota == "bytes"
    assert staged_ids(stack.ctx, patient=patient.address) == set()
    stage_envelopes(tight, patient=patient.address, items=items[:2])
    with pytest.raises(QuotaExceeded):  # the two staged ones use the room
        stage_envelopes(tight, patient=patient.address, items=items[2:])
    few = dataclasses.replace(stack.ctx, quota=StorageQuota(max_records=3, max_bytes=0))
    with pytest.raises(QuotaExceeded) as count_refused:
        stage_envelopes(few, patient=patient.address, items=_sealed(patient, 2))
    assert count_refused.value.quota == "records"
    assert len(staged_ids(stack.ctx, patient=patient.address)) == 2


def test_the_sweep_deletes_and_unpins_stale_staged_envelopes(stack: LocalStack) -> None:
    patient = stack.patient()
    old = stage_envelopes(stack.ctx, patient=patient.address, items=_sealed(patient, 3))
    later = time.time() + 100
    fresh = stage_envelopes(stack.ctx, patient=patient.address, items=_sealed(patient, 1))
    with stack.ctx.db.write() as conn:  # the fresh one was staged 100 s after the others
        conn.execute(staged_envelopes.update().where(
            staged_envelopes.c.record_id == fresh[0].record_id).values(staged_at=int(later)))
    assert sweep_staged(stack.ctx, ttl_s=50, now=later) >= 3
    assert staged_ids(stack.ctx, patient=patient.address) == {fresh[0].record_id}
    pins = set(stack.store.pins())
    assert not any(s.cid in pins for s in old) and fresh[0].cid in pins


def test_the_sweeper_runs_in_the_background(stack: LocalStack) -> None:
    patient = stack.patient()
    staged = stage_envelopes(stack.ctx, patient=patient.address, items=_sealed(patient, 1))
    with batches.StagedSweeper(stack.ctx, ttl_s=0.5, interval_s=0.2) as sweeper:
        deadline = time.time() + 15
        while staged_ids(stack.ctx, patient=patient.address) and time.time() < deadline:
            time.sleep(0.2)
    assert staged_ids(stack.ctx, patient=patient.address) == set()
    assert sweeper.last_error is None and staged[0].cid not in stack.store.pins()


# --- the framed body ---------------------------------------------------------------------------


def _body(items: list[StagedEnvelope]) -> bytes:
    return b"".join(frame_envelopes(items))


def _parse(data: bytes, **limits: int) -> list[tuple[StagedEnvelope, bytes]]:
    out = []
    for item in parse_frames(_pieces(data), **limits):
        out.append((item, b"".join(item.envelope)))  # type: ignore[arg-type]
    return out


def _pieces(data: bytes, size: int = 7) -> Iterator[bytes]:
    return (data[i:i + size] for i in range(0, len(data), size))


def test_frames_round_trip_in_odd_pieces(stack: LocalStack) -> None:
    items = [StagedEnvelope(RecordId(bytes([i + 1]) * 32), ScopeId(bytes([9]) * 32), i,
                            os.urandom(100 * i)) for i in range(4)]
    parsed = _parse(_body(items))
    assert [(p.record_id, p.scope_id, p.epoch, data) for p, data in parsed] == [
        (i.record_id, i.scope_id, i.epoch, i.envelope) for i in items]


@pytest.mark.parametrize(("cut", "field"), [(50, "envelopes[1]"), (80 + 20 + 80 + 3,
                                                                   "envelopes[1].envelope")])
def test_a_truncated_body_names_the_envelope(cut: int, field: str) -> None:
    items = [StagedEnvelope(RecordId(b"\x01" * 32), ScopeId(b"\x02" * 32), 0, b"x" * 20),
             StagedEnvelope(RecordId(b"\x03" * 32), ScopeId(b"\x02" * 32), 0, b"y" * 20)]
    data = _body(items)
    with pytest.raises(InputError) as caught:
        _parse(data[:80 + 20 + cut] if cut == 50 else data[:cut])
    assert caught.value.field == field


def test_hostile_frames_are_refused_with_the_field() -> None:
    head = b"\x01" * 32 + b"\x02" * 32 + (0).to_bytes(8, "big")
    with pytest.raises(EnvelopeTooLarge) as huge:  # 2^64-1 declared: refused before reading
        _parse(head + b"\xff" * 8 + b"abc", max_size=1 << 20)
    assert huge.value.field == "envelopes[0].length"
    with pytest.raises(InputError) as empty:
        _parse(b"")
    assert empty.value.field == "body"
    one = head + (1).to_bytes(8, "big") + b"z"
    with pytest.raises(InputError, match="at most 2 envelopes"):
        _parse(one * 3, max_items=2)
    with pytest.raises(InputError) as short_head:
        _parse(b"\x00" * 10)
    assert short_head.value.field == "envelopes[0]"


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600), piece=st.integers(min_value=1, max_value=97))
def test_any_body_parses_or_is_refused_with_a_field(data: bytes, piece: int) -> None:
    try:
        for item in parse_frames(_pieces(data, piece), max_size=300, max_items=4):
            for _ in item.envelope:
                pass
    except InputError as refused:  # EnvelopeTooLarge included
        assert refused.field.startswith(("envelopes", "body"))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=st.binary(max_size=400), cut=st.integers(min_value=0, max_value=600))
def test_hostile_envelopes_in_good_frames_never_crash(stack: LocalStack, noise: bytes,
                                                      cut: int) -> None:
    """Random bytes, a cut envelope, a cut one with noise after it: each is staged (what the
    service cannot tell from a real envelope: the patient signs its commitment) or refused
    naming envelopes[0], keeping nothing; never another error."""
    patient = _FUZZ.setdefault(id(stack), stack.patient())
    good = _sealed(patient, 1)[0]
    sealed = bytes(good.envelope)  # type: ignore[arg-type]
    for body in (noise, sealed[:cut], sealed[:cut] + noise):
        pins = set(stack.store.pins())
        staged_before = staged_ids(stack.ctx, patient=patient.address)
        try:
            stage_envelopes(stack.ctx, patient=patient.address,
                            items=[dataclasses.replace(good, envelope=body)])
        except InputError as refused:
            assert refused.field.startswith("envelopes[0]"), refused
            assert staged_ids(stack.ctx, patient=patient.address) == staged_before
            assert set(stack.store.pins()) == pins
        else:
            assert good.record_id in staged_ids(stack.ctx, patient=patient.address)


_FUZZ: dict[int, PatientClient] = {}
