"""Honest revocation: a key fragment someone kept opens nothing written after the revoke (issue
15, "what to build": forward secrecy after revoke; docs/keys.md "Epochs").

The attack of the finding: providers A and B hold a grant of one scope; A (or whoever stole the
proxy's database) keeps a copy of A's kfrag rows; the patient revokes A; the patient adds a new
record to the scope. With one delegating key per scope for ever, A's kept fragment plus A's own
secret key re-encrypted and opened that new record. With key epochs the revoke moved the scope
to epoch 1, the new record is encrypted to the epoch-1 key, and the kept (epoch-0) fragment
opens only what was already written then -- while B, re-keyed by the patient's client, reads
old and new records through the normal read path.

Real parts throughout: anvil, the deployed contracts, the in-process service (its event index,
SQLite database and embedded store), the patient's and providers' clients. The module's tests
share one deployment (``SHARED_STACK``: the folder's anvil, one deploy, one API for the HTTP
test); each has its own wallets, and each in-process test its own service database, index and
store, so no test sees another's fragments or records.
"""

from __future__ import annotations

import base64
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from apienv import ChainEnv
from eth_utils.crypto import keccak

from kizuna.access.grant import placeholder_verified_grant
from kizuna.chain.index.store import EventIndex
from kizuna.chain.models import ContractCall
from kizuna.chain.relayer import Relayer
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.local import LocalService
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.db import Database
from kizuna.errors import AccessDenied, FragmentError
from kizuna.services.context import ServiceContext
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.envelope import EnvelopeReader, encrypt_bytes, read_header
from kizuna.types import RecordId

LAB = "Observation:laboratory"

SHARED_STACK = True


class World:
    def __init__(self, chain: object, ctx: ServiceContext, relayer: Relayer,
                 admin: LocalKeySigner, funder: LocalKeySigner, db_file: Path) -> None:
        self.chain = chain
        self.ctx = ctx
        self.relayer = relayer
        self.admin = admin
        self.funder = funder
        self.db_file = db_file

    @property
    def service(self) -> LocalService:
        return LocalService(self.ctx, relayer=self.relayer)

    def signer(self) -> LocalKeySigner:
        signer = LocalKeySigner.generate()
        self.ctx.chain.sender.transact(ContractCall(to=signer.address, data=b"", value=10**18),
                                       self.funder, gas=21_000)
        return signer

    def patient(self) -> PatientClient:
        return PatientClient(signer=self.signer(), service=self.service, chain=self.ctx.chain)

    def provider(self) -> ProviderClient:
        client = ProviderClient(signer=self.signer(), service=self.service, chain=self.ctx.chain)
        self.ctx.chain.registry.add_provider(client.address, client.public_key.to_bytes(),
                                             bytes(keccak(text=f"licence:{client.address}")),
                                             signer=self.admin)
        return client


@pytest.fixture
def world(chain_env: ChainEnv, tmp_path: Path) -> Iterator[World]:
    """An in-process service of this test alone (own database, index, store) on the module's
    deployment; the attack reads this database's file, which holds only this test's rows."""
    chain = chain_env.chain  # one nonce cache per key in this process
    index = EventIndex.for_chain(chain, tmp_path / "index.sqlite")
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    db_file = tmp_path / "service.db"
    db = Database.open(f"sqlite:///{db_file}")
    ctx = ServiceContext.build(chain=chain, index=index, store=store, db=db)
    yield World(chain, ctx, Relayer(chain, LocalKeySigner(chain_env.relayer_key)),
                chain_env.admin, chain_env.funder, db_file)
    db.dispose()
    index.close()


def _kfrag_rows(db_file: Path, provider: str) -> list[tuple[bytes, bytes, bytes, bytes]]:
    """What an attacker copies out of the service's database file: a provider's kfrag rows."""
    with sqlite3.connect(db_file) as conn:
        return [(bytes(r[0]), bytes(r[1]), bytes(r[2]), bytes(r[3])) for r in conn.execute(
            "SELECT kfrag, delegating_key, receiving_key, verifying_key FROM kfrags "
            "WHERE provider = ? ORDER BY share_index", (provider,))]


def _open_with_kept_fragment(world: World, kept: list[tuple[bytes, bytes, bytes, bytes]],
                             thief: ProviderClient, patient: str, record_id: bytes) -> bytes:
    """The attack: re-encrypt the record's capsule with the kept fragment (as a rogue proxy
    would, no access check), then open the data key with the former grantee's secret key."""
    info = world.ctx.records.get(RecordId(record_id))
    with world.ctx.store.get(info.cid) as stream:
        envelope = stream.read()
    header = read_header(envelope)
    delegating = pre.UmbralPublicKey.from_bytes(kept[0][1])
    kfrags = pre.verify_kfrags([row[0] for row in kept],
                               verifying_key=pre.UmbralPublicKey.from_bytes(kept[0][3]),
                               delegating_key=delegating,
                               receiving_key=pre.UmbralPublicKey.from_bytes(kept[0][2]))
    grant = placeholder_verified_grant(patient=patient, grantee=thief.address,  # type: ignore[arg-type]
                                       grantee_key=thief.public_key,
                                       record_id=RecordId(record_id), scope_id=info.scope_id,
                                       expires_at=2**40)
    cfrags = [pre.reencrypt(header.capsule, k, grant=grant) for k in kfrags]
    key = header.unwrap_for_grantee(thief.keys.wallet.decrypting_key, delegating_key=delegating,
                                    cfrags=cfrags, threshold=1)
    return b"".join(EnvelopeReader(envelope).decrypt(key))


def test_kept_fragment_opens_nothing_written_after_the_revoke(world: World) -> None:
    patient, a, b = world.patient(), world.provider(), world.provider()
    old = patient.add_record(b'{"resourceType": "Observation", "id": "before"}', label=LAB,
                             content_type="application/fhir+json")
    expires = patient.now() + 86_400
    patient.grant(a.address, [LAB], expires_at=expires)
    patient.grant(b.address, [LAB], expires_at=expires)
    sid = patient.keys.scope_id(LAB)
    assert world.service.scope_epoch(patient.address, sid) == 0

    kept = _kfrag_rows(world.db_file, a.address)  # A keeps a copy of its fragments
    assert kept
    # The kept fragment is a working key today: it opens the record written before the revoke.
    assert _open_with_kept_fragment(world, kept, a, patient.address, old.record_id) \
        == b'{"resourceType": "Observation", "id": "before"}'

    patient.revoke(a.address, LAB)  # the patient's client re-keys the grantees that remain
    assert world.service.scope_epoch(patient.address, sid) == 1
    assert _kfrag_rows(world.db_file, a.address) == []  # every epoch of A's fragments is gone
    assert world.ctx.kfrags.epochs(patient=patient.address, scope_id=sid,
                                   provider=b.address) == [0, 1]

    new = patient.add_record(b'{"resourceType": "Observation", "id": "after"}', label=LAB,
                             content_type="application/fhir+json")
    assert new.epoch == 1 and old.epoch == 0

    # A's kept fragment plus A's own secret key: the new record does not open.
    with pytest.raises(FragmentError):
        _open_with_kept_fragment(world, kept, a, patient.address, new.record_id)
    # ... nor through the service: A has no grant any more.
    with pytest.raises(AccessDenied):
        a.read(patient=patient.address, record_id=new.record_id)

    # B, the grantee that remains, reads old and new through the normal read path.
    assert b.read(patient=patient.address, record_id=old.record_id) \
        == b'{"resourceType": "Observation", "id": "before"}'
    assert b.read(patient=patient.address, record_id=new.record_id) \
        == b'{"resourceType": "Observation", "id": "after"}'
    # The patient opens both with their own keys.
    assert patient.read_own(new.record_id) == b'{"resourceType": "Observation", "id": "after"}'
    assert patient.read_own(old.record_id) == b'{"resourceType": "Observation", "id": "before"}'


def test_an_upload_to_a_stale_epoch_is_refused(world: World) -> None:
    """A client that kept encrypting to the old key after a revoke would undo the protection:
    the service refuses the envelope (409) unless it names the scope's current epoch."""
    from kizuna.errors import ConflictError

    patient, a = world.patient(), world.provider()
    patient.add_record(b"{}", label=LAB, content_type="application/fhir+json")
    patient.grant(a.address, [LAB], expires_at=patient.now() + 3600)
    patient.revoke(a.address, LAB)
    rid, sid, envelope = patient.seal(b"late", label=LAB, content_type="text/plain")
    signed = patient.sign_registration(record_id=rid, scope_id=sid, envelope=envelope)
    with pytest.raises(ConflictError, match="key epoch 1"):
        patient.upload(record_id=rid, scope_id=sid, envelope=envelope, registration=signed,
                       epoch=0)
    assert patient.upload(record_id=rid, scope_id=sid, envelope=envelope,
                          registration=signed).epoch == 1


def test_a_new_grantee_reads_records_of_every_epoch(world: World) -> None:
    """A grant after a revocation hands the new provider fragments of the older epochs too."""
    patient, a, c = world.patient(), world.provider(), world.provider()
    first = patient.add_record(b"epoch 0", label=LAB, content_type="text/plain")
    patient.grant(a.address, [LAB], expires_at=patient.now() + 3600)
    patient.revoke(a.address, LAB)
    second = patient.add_record(b"epoch 1", label=LAB, content_type="text/plain")
    patient.grant(c.address, [LAB], expires_at=patient.now() + 3600)
    assert c.read(patient=patient.address, record_id=first.record_id) == b"epoch 0"
    assert c.read(patient=patient.address, record_id=second.record_id) == b"epoch 1"


# --- the same over HTTP: the routes a wallet's prepare flow uses --------------------------------


def test_rekey_routes_over_http(people: object, chain_env: object, http: object) -> None:
    """``GET /patient/scope-epochs/{id}``, ``POST /patient/scope-keys`` with ``epoch``,
    ``POST /patient/kfrags`` and the upload's ``X-Kizuna-Scope-Epoch``, against the real API."""
    from participants import hx, signed_in_provider

    from kizuna.receipts.request import proxy_domain
    from kizuna.wire.scopes import scope_keys_typed_data

    patient, a = people.patient, people.provider  # type: ignore[attr-defined]
    b = signed_in_provider(chain_env, http)  # type: ignore[arg-type]
    old = patient.add(b"before", label=LAB, content_type="text/plain")
    for provider in (a, b):
        granted = patient.grant(provider.address, provider.keys.public_key, [LAB])
        assert granted.status_code == 200, granted.text
    sid = old.scope_id
    assert patient.get(f"/patient/scope-epochs/{hx(sid)}").json() == {"scope_id": hx(sid),
                                                                      "epoch": 0}
    assert patient.revoke(a.address, LAB).status_code == 200
    assert patient.get(f"/patient/scope-epochs/{hx(sid)}").json()["epoch"] == 1

    # An envelope sealed to the old key (no epoch header: 0) is refused, naming the epoch.
    stale = patient.seal(b"late", label=LAB, content_type="text/plain")
    refused = patient.upload(stale)
    assert refused.status_code == 409 and "key epoch 1" in refused.text

    # The re-key: the epoch-1 keys bound by a signed statement naming the epoch ...
    delegating = patient.keys.scope_public(sid, 1)
    typed = scope_keys_typed_data(
        proxy_domain(chain_id=patient.chain.chain_id,
                     access_log=patient.chain.deployment.access_log),
        patient=patient.address, scope_id=sid, delegating_key=delegating,
        verifying_key=patient.keys.verifying_key, epoch=1)
    body = {"scope_id": hx(sid), "epoch": 1, "delegating_key": hx(delegating.to_bytes()),
            "verifying_key": hx(patient.keys.verifying_key.to_bytes()),
            "signature": hx(patient.signer.sign_typed_data(typed))}
    replayed = patient.post("/patient/scope-keys", {**body, "epoch": 0})
    assert replayed.status_code in (403, 409), replayed.text  # the epoch is signed
    assert patient.post("/patient/scope-keys", body).status_code == 204
    assert patient.post("/patient/scope-keys", {**body, "epoch": 2}).status_code == 422

    def kfrags(provider: object, epoch: int) -> dict[str, object]:
        return {"provider": provider.address, "scope_id": hx(sid), "epoch": epoch,  # type: ignore[attr-defined]
                "kfrags": [hx(k.to_bytes()) for k in patient.keys.kfrags_for(
                    sid, provider.keys.public_key, epoch=epoch)]}  # type: ignore[attr-defined]

    # ... and fragments of it for B, who still holds a grant; none for the revoked A.
    stored = patient.post("/patient/kfrags", kfrags(b, 1))
    assert stored.status_code == 200 and stored.json() == {"kfrags_stored": 1}, stored.text
    assert patient.post("/patient/kfrags", kfrags(a, 1)).status_code == 403
    assert patient.post("/patient/kfrags", kfrags(b, 2)).status_code == 422

    # A record of epoch 1 (the header names it) is read by B, as is the old one.
    rid = RecordId(os.urandom(32))
    envelope = bytes(encrypt_bytes(b"after", owner_key=delegating, record_id=rid,
                                   content_type="text/plain"))
    new = type(old)(rid, sid, envelope, b"after", "text/plain")
    answer = patient.http.put(
        f"/patient/records/{hx(rid)}", content=envelope,
        headers={**patient.auth, "X-Kizuna-Scope-Id": hx(sid), "X-Kizuna-Scope-Epoch": "1",
                 "X-Kizuna-Registration": patient.registration(new),
                 "Content-Type": "application/octet-stream"})
    assert answer.status_code == 201 and answer.json()["epoch"] == 1, answer.text
    for sealed in (old, new):
        read = b.request_read(patient.address, sealed.record_id)
        assert read.status_code == 200, read.text
        grant = read.json()
        envelope = (b.fetch(grant["cid"]) if grant.get("envelope_base64") is None
                    else base64.b64decode(grant["envelope_base64"]))
        got = b.open(grant, envelope, commitment=commitment_of(sealed.envelope))
        assert got == sealed.content
