"""Reading back records registered in a batch (issue 12), through the real API: the client
takes each record's commitment from the chain — the patient's ``RecordBatchRegistered`` and
the batch's manifest, used only when it rebuilds to the root on chain — never from the service.
A service that swaps a record's ciphertext and says so in its records (its commitment), or
also hands out a manifest to match, is caught on the single read and on the bulk read."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import pytest
from apienv import ApiServer, ChainEnv
from sqlalchemy import update

from kizuna.batch import BatchLeaf, BatchManifest
from kizuna.chain.index import EventIndex
from kizuna.client.api_service import ApiService
from kizuna.client.chainview import BatchManifests, registered_commitment, registered_commitments
from kizuna.client.export import export, read_many
from kizuna.client.http import ApiClient
from kizuna.client.local import LocalService
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.config import Settings
from kizuna.crypto.commitment import commitment_of
from kizuna.db import Database, schema
from kizuna.errors import IntegrityError, NotFoundError
from kizuna.services.context import ServiceContext
from kizuna.storage.embedded import EmbeddedStore
from kizuna.types import Commitment, RecordId
from kizuna.wire.batches import BatchInfo, StagedEnvelope

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test's patient
and batch are its own."""

LABEL = "Observation:vital-signs"
HR = {"resourceType": "Observation", "status": "final",
      "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}}


def _content(i: int) -> bytes:
    return json.dumps({**HR, "id": f"hr{i}", "valueQuantity": {"value": 60 + i}},
                      separators=(",", ":")).encode()


@dataclass
class Batch:
    client: PatientClient
    info: BatchInfo
    manifest: BatchManifest
    contents: dict[bytes, bytes]
    alone: RecordId


def _client(api_server: ApiServer, chain_env: ChainEnv,
            signer: object | None = None) -> tuple[PatientClient, ApiService]:
    signer = signer or chain_env.new_signer()
    api = ApiClient(client=httpx.Client(base_url=api_server.url, timeout=60))
    service = ApiService(api, chain_env.chain)
    api.login(signer)  # type: ignore[arg-type]
    return PatientClient(signer=signer, service=service,  # type: ignore[arg-type]
                         chain=chain_env.chain), service


@pytest.fixture
def batch(api_server: ApiServer, chain_env: ChainEnv) -> Iterator[Batch]:
    """A patient with one record registered alone and three in one batch (staged, signed,
    registered through the API as an import does)."""
    client, service = _client(api_server, chain_env)
    try:
        alone = client.add_record(_content(99), label=LABEL,
                                  content_type="application/fhir+json").record_id
        sid, epoch = client.scope_and_epoch(LABEL)
        sealed = [client.seal(_content(i), label=LABEL, content_type="application/fhir+json")
                  for i in range(3)]
        staged = service.stage_envelopes(patient=client.address, items=[
            StagedEnvelope(rid, sid, epoch, envelope) for rid, _, envelope in sealed])
        manifest = BatchManifest.of(BatchLeaf(s.record_id, sid, s.commitment) for s in staged)
        info = service.register_batch(patient=client.address, manifest=manifest,
                                      registration=client.sign_batch_registration(manifest))
        yield Batch(client, info, manifest,
                    {bytes(rid): _content(i) for i, (rid, _, _) in enumerate(sealed)}, alone)
    finally:
        service.close()


def test_batch_records_read_back_against_the_on_chain_root(batch: Batch,
                                                         chain_env: ChainEnv) -> None:
    client, chain = batch.client, chain_env.chain
    assert chain.ledger.batch_of(batch.manifest.root).patient == client.address  # type: ignore[union-attr]
    for rid, content in batch.contents.items():
        assert client.read_own(rid) == content  # the single read: hint, event, manifest
    # the node's events alone do not say a batch record's commitment: the manifest does
    first = batch.manifest.leaves[0]
    with pytest.raises(NotFoundError):
        registered_commitment(chain, patient=client.address, record_id=first.record_id)
    api = client.service.api  # type: ignore[attr-defined]
    manifests = BatchManifests(api.batch_manifest)
    assert registered_commitment(chain, patient=client.address, record_id=first.record_id,
                                 manifests=manifests) == first.commitment
    assert registered_commitment(chain, patient=client.address, record_id=first.record_id,
                                 block=batch.info.block_number,
                                 manifests=manifests) == first.commitment
    every = registered_commitments(chain, patient=client.address, manifests=manifests)
    assert every == {**{bytes(leaf.record_id): leaf.commitment
                        for leaf in batch.manifest.leaves},
                     bytes(batch.alone): registered_commitment(
                         chain, patient=client.address, record_id=batch.alone)}
    # the bulk path: one listing, one getLogs, the manifest once, every record checked
    records = client.records()
    opened = {bytes(o.record.record_id): o.content for o in read_many(client, records)}
    assert opened == {**batch.contents, bytes(batch.alone): _content(99)}
    out = io.BytesIO()
    assert export(client, out, fmt="ndjson").records == 4


def _service_db(settings: Settings) -> Database:
    return Database.open(settings.database_url)


def test_a_service_lying_about_a_batch_record_is_caught(
        batch: Batch, settings: Settings, api_server: ApiServer, chain_env: ChainEnv) -> None:
    """The service swaps a batch record's envelope for another one — sealed to the patient's
    own key, so it would decrypt — and writes the new commitment in its records; then it also
    serves a manifest rebuilt with that commitment. The client reads the chain: refused."""
    client = batch.client
    victim = batch.manifest.leaves[1]
    rid = bytes(victim.record_id)
    _, _, forged = client.seal(b'{"resourceType":"Observation","id":"forged"}', label=LABEL,
                               content_type="application/fhir+json",
                               record_id=RecordId(rid))
    store = EmbeddedStore(settings.store_path)
    db = _service_db(settings)
    try:
        with db.write() as conn:
            conn.execute(update(schema.records).where(schema.records.c.record_id == rid)
                         .values(cid=store.put(forged), commitment=commitment_of(forged),
                                 size=len(forged)))
        with pytest.raises(IntegrityError):
            client.read_own(rid)
        listed = [r for r in client.records() if bytes(r.record_id) == rid]
        assert listed and listed[0].commitment == commitment_of(forged)  # the service's word
        with pytest.raises(IntegrityError):
            list(read_many(client, listed))

        # the manifest forged to match: its leaves no longer lead to the root on chain
        leaves = list(batch.manifest.leaves)
        leaves[1] = BatchLeaf(victim.record_id, victim.scope_id,
                              Commitment(commitment_of(forged)))
        with db.write() as conn:
            conn.execute(update(schema.record_batches)
                         .where(schema.record_batches.c.root == batch.manifest.root)
                         .values(manifest_cid=store.put(BatchManifest.of(leaves).encode())))
        fresh, service = _client(api_server, chain_env, client.signer)  # no manifest cached
        try:
            with pytest.raises(IntegrityError, match="not the one registered on chain"):
                fresh.read_own(rid)
            with pytest.raises(IntegrityError, match="not the one registered on chain"):
                list(read_many(fresh, fresh.records()))
            # the records whose bytes are still the registered ones are refused too (the
            # batch's manifest is unusable), never read on the service's word
            other = bytes(batch.manifest.leaves[0].record_id)
            with pytest.raises(IntegrityError):
                fresh.read_own(other)
        finally:
            service.close()
    finally:
        db.dispose()


def test_in_process_service_reads_batch_commitments_from_checked_manifests(
        batch: Batch, settings: Settings, chain_env: ChainEnv) -> None:
    """``LocalService`` answers from its event index, which projects a batch only from a
    manifest that rebuilds to the on-chain root: a forged manifest leaves the batch's records
    unregistered (refused), never registered with the forged commitments."""
    chain, patient = chain_env.chain, batch.client.address
    db = _service_db(settings)
    store = EmbeddedStore(settings.store_path)

    def local() -> tuple[LocalService, EventIndex]:
        index = EventIndex.for_chain(chain, ":memory:")
        return LocalService(ServiceContext.build(chain=chain, index=index, store=store,
                                                 db=db)), index

    try:
        service, index = local()
        with index:
            for leaf in batch.manifest.leaves:
                assert service.onchain_commitment(patient=patient,
                                                  record_id=leaf.record_id) == leaf.commitment
            every = service.onchain_commitments(patient=patient)
            assert {bytes(leaf.record_id): leaf.commitment
                    for leaf in batch.manifest.leaves}.items() <= every.items()
        leaves = list(batch.manifest.leaves)
        victim = leaves[0]
        leaves[0] = BatchLeaf(victim.record_id, victim.scope_id, Commitment(b"\x05" * 32))
        with db.write() as conn:
            conn.execute(update(schema.record_batches)
                         .where(schema.record_batches.c.root == batch.manifest.root)
                         .values(manifest_cid=store.put(BatchManifest.of(leaves).encode())))
        service, index = local()
        with index:
            with pytest.raises(NotFoundError):
                service.onchain_commitment(patient=patient, record_id=victim.record_id)
            assert bytes(victim.record_id) not in service.onchain_commitments(patient=patient)
    finally:
        db.dispose()


def test_provider_reads_batch_records_checked_against_the_root(
        batch: Batch, api_server: ApiServer, chain_env: ChainEnv) -> None:
    """A provider granted the scope reads a batch record with its own node: the read answer
    names the record's commitment, batch root and proof; the provider takes the commitment
    only once the node says the root is the patient's batch (``batchOf``) and the proof leads
    there. An answer lying about the commitment, the root or the batch is refused."""
    chain = chain_env.chain
    signer = chain_env.new_signer()
    api = ApiClient(client=httpx.Client(base_url=api_server.url, timeout=60))
    service = ApiService(api, chain)
    try:
        provider = ProviderClient(signer=signer, service=service, chain=chain)
        chain_env.add_provider(signer, provider.public_key.to_bytes())
        api.login(signer)
        patient = batch.client
        patient.grant(provider.address, [LABEL], expires_at=patient.service.chain_time() + 3600)
        leaf = batch.manifest.leaves[2]
        content = batch.contents[bytes(leaf.record_id)]
        assert provider.read(patient=patient.address, record_id=leaf.record_id) == content
        grant = provider.request_read(patient=patient.address, record_id=leaf.record_id)
        assert (grant.batch_root, grant.commitment) == (batch.manifest.root, leaf.commitment)
        envelope = grant.envelope or b"".join(service.fetch(grant.cid))
        assert provider.open(grant, envelope) == content
        with pytest.raises(IntegrityError, match="does not lead to batch"):
            provider.open(replace(grant, commitment=Commitment(b"\x05" * 32)), envelope)
        with pytest.raises(IntegrityError, match="does not lead to batch"):
            provider.open(replace(grant, proof=tuple(batch.manifest.proof(0))), envelope)
        with pytest.raises(NotFoundError, match="no batch"):
            provider.open(replace(grant, batch_root=b"\x06" * 32), envelope)
        with pytest.raises(NotFoundError):  # "registered alone": the node has no such event
            provider.open(replace(grant, batch_root=None, proof=()), envelope)
    finally:
        service.close()
