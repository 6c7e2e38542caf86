"""A small, real story for the audit tests: contracts on eth-tester, a SQLite service database,
an embedded content store, and reads served by the core's ``serve_read``.

patient registers two records (scopes A and B) → grants the provider both scopes → the provider
reads each record (3 reads) → the patient revokes scope B → a read of B is refused → one more
read of A → the anchorer anchors every receipt. Nothing is mocked.

``registered="batch"``: the two records are registered in one batch (one ``registerBatch`` of
their Merkle root; the rows carry the root, leaf index and proof; the manifest is in the store
and in ``record_batches``), as an import does, instead of one ``registerRecord`` each.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_utils.crypto import keccak
from sqlalchemy import insert
from web3 import EthereumTesterProvider, Web3

from kizuna.batch import BatchLeaf, BatchManifest, pack_proof
from kizuna.chain.connection import Chain, connect, web3_for
from kizuna.chain.deploy import deploy
from kizuna.chain.index import EventIndex
from kizuna.chain.localnode import dev_private_keys
from kizuna.chain.models import ContractCall
from kizuna.chain.signers import LocalKeySigner
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.db import Database, schema
from kizuna.errors import AccessDenied
from kizuna.proxy.kfrags import sign_scope_keys
from kizuna.receipts.anchorer import Anchorer
from kizuna.receipts.request import ReadRequest
from kizuna.receipts.store import ReceiptStore
from kizuna.services.context import ServiceContext
from kizuna.services.read import serve_read
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.envelope import encrypt_bytes
from kizuna.types import Cid, RecordId, ScopeId
from kizuna.wire.reads import ReadGrant


def scope(label: str) -> ScopeId:
    return ScopeId(bytes(keccak(text=f"audit-test-scope:{label}")))


@dataclass
class Party:
    """An Ethereum account whose key the test holds (to sign read requests, statements)."""

    key: bytes
    signer: LocalKeySigner

    @classmethod
    def new(cls) -> Party:
        key = os.urandom(32)
        return cls(key, LocalKeySigner(key))

    @property
    def address(self) -> str:
        return self.signer.address


@dataclass
class Story:
    w3: Web3
    chain: Chain
    admin: LocalKeySigner
    patient: Party
    provider: Party
    db: Database
    db_path: Path
    store: EmbeddedStore
    store_path: Path
    index: EventIndex
    ctx: ServiceContext
    records: dict[str, RecordId] = field(default_factory=dict)
    cids: dict[str, Cid] = field(default_factory=dict)
    scope_secret: dict[str, pre.UmbralSecretKey] = field(default_factory=dict)
    reads: list[ReadGrant] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    revoke_block: int = 0
    batch_root: bytes | None = None
    """The root of the batch the records were registered in (``None``: each alone)."""
    manifest_cid: Cid | None = None

    def fund(self, address: str) -> None:
        call = ContractCall(to=Web3.to_checksum_address(address), data=b"", value=10**18)
        self.chain.sender.transact(call, self.admin, gas=21_000)

    def read(self, label: str) -> ReadGrant:
        request = ReadRequest.new(provider=self.provider.address, patient=self.patient.address,
                                  record_id=self.records[label])
        signature = request.sign(self.provider.key, self.ctx.domain)
        grant = serve_read(self.ctx, request=request, signature=signature)
        self.reads.append(grant)
        return grant

    def anchor(self) -> None:
        batches = Anchorer(db=self.db, chain=self.chain, signer=self.admin).run_once()
        left = ReceiptStore(self.db).count(anchored=False)
        if left:  # say why, should it happen: the story's tests all need every receipt anchored
            served = [r.served_at for r in ReceiptStore(self.db).select()]
            raise AssertionError(
                f"{left} receipts not anchored: served at {served}, batches {batches}, clock "
                f"{time.time():.3f}, chain head {self.chain.head()}")

    def clone_db(self, target: Path) -> Database:
        """A copy of the service database (to tamper with, leaving the story's intact)."""
        source = sqlite3.connect(str(self.db_path))
        copy = sqlite3.connect(str(target))
        source.backup(copy)
        source.close()
        copy.close()
        return Database.open(f"sqlite:///{target}")


def build_story(tmp: Path, *, rpc_url: str | None = None, batch: bool = False,
                registered: str = "alone") -> Story:
    """The story on eth-tester, or on the node at ``rpc_url`` (anvil: a dev key deploys).
    ``batch``: the patient grants both scopes in one ``grantBatch`` (one ``AccessGrantedBatch``
    event, as the demo does) instead of one ``grant`` per scope. ``registered``: ``"alone"``
    (a ``registerRecord`` per record) or ``"batch"`` (both in one ``registerBatch``)."""
    assert registered in ("alone", "batch")
    if rpc_url is None:
        provider_w3 = EthereumTesterProvider()
        w3 = Web3(provider_w3)
        keys = provider_w3.ethereum_tester.backend.account_keys
        admin_key = keys[0].to_hex() if hasattr(keys[0], "to_hex") else keys[0]
        deployment = deploy(w3, Account.from_key(admin_key), directory=None)
        chain = connect(w3, deployment)
    else:
        admin_key = dev_private_keys(10)[7]  # chain tests use keys 8 and 9, others the first
        deployment = deploy(web3_for(rpc_url), Account.from_key(admin_key), directory=None)
        chain = connect(rpc_url, deployment)
        w3 = chain.w3
    admin = LocalKeySigner(admin_key)
    db_path = tmp / "service.db"
    db = Database.open(f"sqlite:///{db_path}")
    store_path = tmp / "store"
    store = EmbeddedStore(store_path, fsync=False)
    index = EventIndex.for_chain(chain, tmp / "index.sqlite")
    ctx = ServiceContext.build(chain=chain, index=index, store=store, db=db,
                               anchor_signer=admin)
    story = Story(w3=w3, chain=chain, admin=admin, patient=Party.new(), provider=Party.new(),
                  db=db, db_path=db_path, store=store, store_path=store_path, index=index,
                  ctx=ctx)
    story.fund(story.patient.address)
    story.fund(story.provider.address)

    provider_umbral = pre.UmbralSecretKey.random()
    chain.registry.add_provider(story.provider.address, provider_umbral.public_key.to_bytes(),
                                bytes(keccak(text="credential")), signer=admin)
    patient = story.patient
    kfrag_signer = pre.UmbralSigner(pre.UmbralSecretKey.random())
    expires = int(w3.eth.get_block("latest")["timestamp"]) + 30 * 86400
    unregistered: list[dict[str, object]] = []  # rows of the batch, registered after the loop
    for label in ("A", "B"):
        scope_id = scope(label)
        secret = pre.UmbralSecretKey.random()
        story.scope_secret[label] = secret
        delegating = secret.public_key
        statement = sign_scope_keys(patient.key, ctx.domain, patient=patient.address,
                                    scope_id=scope_id, delegating_key=delegating,
                                    verifying_key=kfrag_signer.verifying_key)
        ctx.kfrags.register_scope_keys(patient=patient.address, scope_id=scope_id,
                                       delegating_key=delegating,
                                       verifying_key=kfrag_signer.verifying_key,
                                       signature=statement)
        record_id = RecordId(os.urandom(32))
        envelope = bytes(encrypt_bytes(f'{{"resourceType":"Observation","n":"{label}"}}'.encode(),
                                       owner_key=delegating, record_id=record_id,
                                       content_type="application/fhir+json"))
        cid = store.put(envelope)
        commitment = commitment_of(envelope)
        row = {"record_id": bytes(record_id), "patient": patient.address, "scope_id": scope_id,
               "cid": cid, "commitment": commitment, "size": len(envelope),
               "content_type": "application/fhir+json", "created_at": int(time.time())}
        if registered == "alone":
            chain.ledger.register_record(record_id, commitment, scope_id, signer=patient.signer)
            with db.write() as conn:
                conn.execute(insert(schema.records).values(**row))
        else:
            unregistered.append(row)
        story.records[label] = record_id
        story.cids[label] = cid
        if not batch:
            chain.ledger.grant(story.provider.address, scope_id, expires, signer=patient.signer)
        kfrags = pre.generate_kfrags(secret, provider_umbral.public_key, kfrag_signer,
                                     threshold=1, shares=1)
        ctx.kfrags.put(patient=patient.address, scope_id=scope_id,
                       provider=story.provider.address,
                       receiving_key=provider_umbral.public_key,
                       kfrags=[k.to_bytes() for k in kfrags])

    if unregistered:
        _register_batch(story, unregistered)
    if batch:
        chain.ledger.grant_batch(story.provider.address, [scope("A"), scope("B")], expires,
                                 signer=patient.signer)
    story.read("A")
    story.read("B")
    story.read("A")
    revoked = chain.ledger.revoke(story.provider.address, scope("B"), signer=patient.signer)
    story.revoke_block = revoked.block_number
    ctx.kfrags.delete(patient=patient.address, scope_id=scope("B"),
                      provider=story.provider.address)
    try:
        story.read("B")
    except AccessDenied as refused:
        story.refused.append(type(refused).__name__)
    story.read("A")
    story.anchor()
    return story


def _register_batch(story: Story, rows: list[dict[str, object]]) -> None:
    """Register ``rows`` as one batch, as the service does: the chain first, then the manifest
    in the store and the rows (root, leaf index, proof) with the batch's ``record_batches``."""
    manifest = BatchManifest.of(BatchLeaf(RecordId(r["record_id"]),  # type: ignore[arg-type]
                                          ScopeId(r["scope_id"]),  # type: ignore[arg-type]
                                          r["commitment"])  # type: ignore[arg-type]
                                for r in rows)
    receipt = story.chain.ledger.register_batch(manifest.root, manifest.count,
                                                signer=story.patient.signer)
    story.batch_root = manifest.root
    story.manifest_cid = story.store.put(manifest.encode())
    with story.db.write() as conn:
        for position, r in enumerate(rows):
            conn.execute(insert(schema.records).values(
                **r, batch_root=manifest.root, leaf_index=position,
                proof=pack_proof(manifest.proof(position))))
        conn.execute(insert(schema.record_batches).values(
            root=manifest.root, patient=story.patient.address, count=manifest.count,
            manifest_cid=story.manifest_cid, block_number=receipt.block_number,
            created_at=int(time.time())))
    story.index.manifest_arrived(manifest.root)
