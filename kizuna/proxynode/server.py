"""A threshold proxy node (``kizuna proxy serve``): its own process, database, event index,
chain RPC and Ethereum key; it serves the read route only (docs/proxies.md).

A node is a :class:`~kizuna.services.context.ServiceContext` over ITS OWN database and index:
the read is :func:`kizuna.services.read.serve_read` unchanged — the signed request verified,
the access check at the chain head through the node's own RPC and index, the key fragment
(this node's one fragment), the re-encryption, the receipt written in the node's own database
before it answers. What a node holds, it holds only after checking it itself:

* ``POST /node/kfrags``: the patient's ScopeKeys statement (wallet-signed, as for the service)
  and a :class:`~kizuna.proxy.threshold.NodeKfrag` statement binding the fragment to THIS node's
  address (:func:`~kizuna.proxy.threshold.accept_node_kfrag`); the fragment must verify against
  the provider's Umbral key in the provider registry at the head.
* ``POST /node/records``: a record the node will serve: its on-chain registration (this node's
  index: patient, scope) and the envelope in the content store, whose SHA-256 must be the
  on-chain commitment. A record registered in a batch comes with its batch root and Merkle
  proof, checked as the service's access check does (``batchRecordOf`` of the root and the
  proof from the leaf, :func:`kizuna.access.check.registered_status`).
* ``POST /node/reads``: the provider's signed read; no session — the request's own EIP-712
  signature is the provider's authentication, as inside ``serve_read``. The answer carries
  the patient's signed statement of this node's fragment (the proxy set and the threshold,
  the kfrag's digest, never the kfrag): how the provider learns m and the set.

The node anchors its own receipts (:class:`~kizuna.receipts.anchorer.Anchorer` with the node's
key, which the AccessLog admin gave ANCHOR_ROLE) in its own sequence of batches on AccessLog.

Revocation reaches the node through its own :class:`~kizuna.services.follower.IndexFollower`,
which deletes the fragments of every grant its own index saw end; the access check refuses at
the head whatever the database still holds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)

from kizuna.api import errors
from kizuna.api.convert import read_answer, unhex
from kizuna.api.direct import served_by, signed_read
from kizuna.api.limits import BodyLimits
from kizuna.api.readworkers import ReadWorkers
from kizuna.api.schemas import ReadIn
from kizuna.batch import pack_proof
from kizuna.chain.signers import Signer
from kizuna.config import DEFAULT_MAX_JSON_BODY_BYTES
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.crypto.wallet_keys import checked_epoch
from kizuna.db import schema as t
from kizuna.errors import ConflictError, InputError, IntegrityError, NotFoundError
from kizuna.hashing import keccak
from kizuna.proxy.threshold import NodeKfrag, accept_node_kfrag
from kizuna.services.context import ServiceContext
from kizuna.services.read import serve_read
from kizuna.storage.envelope import read_header
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId, checksum_address
from kizuna.wire.reads import ReadGrant
from kizuna.wire.records import RecordInfo

log = logging.getLogger(__name__)

READ_THREADS = 2
"""The node's read threads (kizuna.api.readworkers: one computes while the other waits on the
chain or the database; more only contend for the interpreter lock)."""

MAX_NODE_ENVELOPE_BYTES = 64 * 1024 * 1024
"""A record the node hashes whole when it is handed (the envelope's SHA-256 is its commitment)."""

Hex = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]*$", max_length=20_000)]


node_metadata = MetaData()
"""The node's own table, beside the service schema in the node's own database."""

node_statements = Table(
    "node_statements",
    node_metadata,
    Column("patient", String(42), primary_key=True),
    Column("scope_id", LargeBinary(32), primary_key=True),
    Column("provider", String(42), primary_key=True),
    Column("epoch", BigInteger, primary_key=True),
    Column("nodes", Text, nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("kfrag_digest", LargeBinary(32), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)
"""The patient's NodeKfrag statement of each fragment this node holds (the kfrag itself is in
``kfrags``): sent with each read so the provider learns the grant's proxy set and threshold
from the patient's own signature, not from any node's word."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeKfragIn(_In):
    """One node's fragment with the patient's two statements."""

    patient: str
    scope_id: Hex
    provider: str
    epoch: int = Field(ge=0)
    nodes: list[str] = Field(min_length=1, max_length=255)
    threshold: int = Field(ge=1, le=255)
    kfrag: Hex
    signature: Hex = Field(description="the patient's EIP-712 NodeKfrag signature")
    delegating_key: Hex
    verifying_key: Hex
    scope_keys_signature: Hex = Field(description="the patient's ScopeKeys signature")


class NodeRecordIn(_In):
    record_id: Hex
    cid: str = Field(min_length=1, max_length=128)
    epoch: int = Field(ge=0)
    batch_root: Hex | None = Field(None, description="for a record registered in a batch: "
                                   "the batch's root (with scope_id, commitment and proof)")
    scope_id: Hex | None = None
    commitment: Hex | None = None
    leaf_index: int | None = Field(None, ge=0)
    proof: list[Hex] = Field(default_factory=list, max_length=64)


def statement_of(body: NodeKfragIn, node: Address) -> NodeKfrag:
    """The statement as this node received it (the node named is this node: any other
    statement would not verify against the patient's signature)."""
    return NodeKfrag(patient=checksum_address(body.patient),
                     scope_id=ScopeId(unhex("scope_id", body.scope_id)),
                     provider=checksum_address(body.provider), epoch=body.epoch, node=node,
                     nodes=tuple(checksum_address(n) for n in body.nodes),
                     threshold=body.threshold, kfrag=unhex("kfrag", body.kfrag),
                     signature=unhex("signature", body.signature))


def accept_kfrag(ctx: ServiceContext, node: Address, body: NodeKfragIn) -> int:
    """Check and store one node-bound fragment; the number stored (1)."""
    from kizuna.access.check import ProviderKeys

    statement = statement_of(body, node)
    delegating = pre.UmbralPublicKey.from_bytes(unhex("delegating_key", body.delegating_key),
                                                field="delegating_key")
    verifying = pre.UmbralPublicKey.from_bytes(unhex("verifying_key", body.verifying_key),
                                               field="verifying_key")
    ctx.kfrags.register_scope_keys(patient=statement.patient, scope_id=statement.scope_id,
                                   delegating_key=delegating, verifying_key=verifying,
                                   signature=unhex("scope_keys_signature",
                                                   body.scope_keys_signature),
                                   epoch=statement.epoch)
    receiving = ProviderKeys(ctx.chain).key_of(statement.provider)
    accept_node_kfrag(ctx.domain, statement, node=node, delegating_key=delegating,
                      verifying_key=verifying, receiving_key=receiving)
    stored = ctx.kfrags.put(patient=statement.patient, scope_id=statement.scope_id,
                            provider=statement.provider, receiving_key=receiving,
                            kfrags=[statement.kfrag], epoch=statement.epoch)
    key = {"patient": statement.patient, "scope_id": bytes(statement.scope_id),
           "provider": statement.provider, "epoch": statement.epoch}
    with ctx.db.write() as conn:
        conn.execute(delete(node_statements).where(
            *(node_statements.c[k] == v for k, v in key.items())))
        conn.execute(insert(node_statements).values(
            **key, nodes=json.dumps(list(statement.nodes)), threshold=statement.threshold,
            kfrag_digest=keccak(statement.kfrag), signature=statement.signature))
    return stored


_SELECT_STATEMENT = (
    f"SELECT nodes, threshold, kfrag_digest, signature FROM {node_statements.name} "
    "WHERE patient = ? AND scope_id = ? AND provider = ? AND epoch = ?")
"""Every read answer carries it: through the driver (kizuna.db.driver), as the read's own
statements (SQLAlchemy's per-statement cost was as much as the statement's work)."""


def statement_json(ctx: ServiceContext, *, patient: Address, scope_id: bytes,
                   provider: Address, record_id: bytes) -> dict[str, Any] | None:
    """The patient's statement of the fragment this node re-encrypted ``record_id`` with (the
    record's epoch), as the read answer carries it; ``None`` when the node has none."""
    epoch = ctx.records.get(RecordId(bytes(record_id))).epoch  # the read's own record row
    row = ctx.db.driver.first(_SELECT_STATEMENT, (patient, bytes(scope_id), provider, epoch))
    if row is None:
        return None
    nodes, threshold, kfrag_digest, signature = row
    return {"epoch": int(epoch), "nodes": json.loads(nodes), "threshold": int(threshold),
            "kfrag_digest": "0x" + bytes(kfrag_digest).hex(),
            "signature": "0x" + bytes(signature).hex()}


def node_read_answer(grant: ReadGrant, statement: dict[str, Any] | None) -> bytes:
    """The node's answer to a read: the service's ``ReadOut`` JSON (``read_answer``) with
    ``node_statement`` added as its last member."""
    answer = read_answer(grant)
    return (answer[:-1] + b',"node_statement":'
            + json.dumps(statement, separators=(",", ":")).encode() + b"}")


def accept_record(ctx: ServiceContext, body: NodeRecordIn) -> dict[str, Any]:
    """Know a record to serve, from the chain (this node's index) and the content store."""
    record_id = RecordId(unhex("record_id", body.record_id))
    if len(record_id) != 32:
        raise InputError("record_id", "must be exactly 32 bytes")
    epoch = checked_epoch("epoch", body.epoch)
    ctx.index.head()  # this node's index, synced to its node's head
    if body.batch_root is not None:
        registered = _batch_record(ctx, record_id, body)
    else:
        alone = ctx.index.index.record(record_id)
        if alone is None or alone.batch_root is not None:
            raise NotFoundError(f"record 0x{bytes(record_id).hex()} is not registered "
                                "on-chain alone (a batch record: give its batch_root and "
                                "proof)")
        registered = _Registered(patient=alone.patient, scope_id=alone.scope_id,
                                 commitment=alone.commitment, block_number=alone.block_number)
    if epoch > ctx.index.scope_epoch(registered.patient, registered.scope_id):
        raise InputError("epoch", "is beyond the scope's key epoch on-chain")
    with ctx.store.get(body.cid) as stream:
        envelope = stream.read(MAX_NODE_ENVELOPE_BYTES + 1)
    if len(envelope) > MAX_NODE_ENVELOPE_BYTES:
        raise InputError("cid", f"the envelope is over {MAX_NODE_ENVELOPE_BYTES} bytes")
    if commitment_of(envelope) != registered.commitment:
        raise IntegrityError("the envelope under the CID is not the record registered on-chain")
    header = read_header(envelope)
    if header.record_id != record_id:
        raise IntegrityError("the envelope is of another record")
    row = {"record_id": bytes(record_id), "patient": registered.patient,
           "scope_id": bytes(registered.scope_id), "cid": body.cid,
           "commitment": bytes(registered.commitment), "size": len(envelope),
           "content_type": header.content_type, "created_at": registered.block_number,
           "epoch": epoch, "batch_root": registered.batch_root,
           "leaf_index": registered.leaf_index, "proof": registered.proof}
    from sqlalchemy.exc import IntegrityError as SqlIntegrityError

    try:
        with ctx.db.write() as conn:
            existing = conn.execute(select(t.records.c.cid).where(
                t.records.c.record_id == bytes(record_id))).first()
            if existing is None:
                conn.execute(t.records.insert().values(**row))
            elif existing[0] != body.cid:
                raise ConflictError(f"record 0x{bytes(record_id).hex()} is known under "
                                    "another CID")
    except SqlIntegrityError:
        pass  # another request stored the same row first
    return {"record_id": "0x" + bytes(record_id).hex(), "patient": registered.patient,
            "scope_id": "0x" + bytes(registered.scope_id).hex(), "epoch": epoch}


@dataclasses.dataclass(frozen=True, slots=True)
class _Registered:
    """What the chain says of a record handed to the node (alone, or in a batch)."""

    patient: Address
    scope_id: ScopeId
    commitment: Commitment
    block_number: int
    batch_root: bytes | None = None
    leaf_index: int | None = None
    proof: bytes | None = None


def _batch_record(ctx: ServiceContext, record_id: RecordId,
                  body: NodeRecordIn) -> _Registered:
    """A batch record, checked as the service's access check checks it: ``batchRecordOf``
    of the root names its patient and the proof leads from the leaf (record id, scope,
    commitment) to that root (:func:`kizuna.access.check.registered_status`)."""
    from kizuna.access.check import registered_status

    if body.scope_id is None or body.commitment is None:
        raise InputError("batch_root", "a batch record needs its scope_id and commitment too")
    root = unhex("batch_root", body.batch_root or "")
    info = RecordInfo(record_id=record_id, patient=checksum_address("0x" + "00" * 20),
                      scope_id=ScopeId(unhex("scope_id", body.scope_id)), cid=Cid(body.cid),
                      commitment=Commitment(unhex("commitment", body.commitment)), size=0,
                      content_type="", created_at=0, batch_root=root,
                      leaf_index=body.leaf_index,
                      proof=pack_proof([unhex("proof", p) for p in body.proof]))
    status = registered_status(ctx.chain, info)
    if status is None:
        raise NotFoundError(f"record 0x{bytes(record_id).hex()} is not in batch "
                            f"0x{root.hex()} on-chain (no such batch record, or the proof "
                            "does not lead to its root)")
    if status.superseded:
        raise ConflictError(f"record 0x{bytes(record_id).hex()} was superseded")
    return _Registered(patient=status.patient, scope_id=info.scope_id,
                       commitment=info.commitment, block_number=int(status.registered_at),
                       batch_root=root, leaf_index=info.leaf_index, proof=info.proof)


def checked_origins(origins: Sequence[str]) -> list[str]:
    """The web pages' origins a node answers CORS for, each exactly ``scheme://host[:port]``
    (the rule of the page's connect-src, :func:`kizuna.chain.agents.proxies.node_origin`).
    ``*`` is refused: a read needs no cookie or session, but a node has no reason to serve
    any page on the web, and a named list keeps a stray page's script from using it."""
    from kizuna.chain.agents.proxies import node_origin

    checked = []
    for origin in origins:
        origin = origin.strip().rstrip("/")
        if node_origin(origin) != origin:
            raise InputError("allow_origin", f"{origin!r} is not an origin (scheme://host or "
                                             "scheme://host:port, http or https; no '*', path "
                                             "or upper case)")
        checked.append(origin)
    return checked


def _lifespan(ctx: ServiceContext, workers: ReadWorkers, *, follow_interval_s: float,
              anchor_signer: Signer | None,
              anchor_interval_s: float) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What runs beside a node's routes: its own index follower (deletes ended grants'
    fragments) and, with ``anchor_signer``, its anchorer; the read threads end with them."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from kizuna.receipts.anchorer import Anchorer
        from kizuna.services.follower import IndexFollower

        follower = IndexFollower(ctx, interval_s=follow_interval_s)
        follower.start()
        anchorer = (Anchorer(db=ctx.db, chain=ctx.chain, signer=anchor_signer,
                             interval_s=anchor_interval_s)
                    if anchor_signer is not None else None)
        if anchorer is not None:
            anchorer.start()
        try:
            yield
        finally:
            if anchorer is not None:
                anchorer.stop()
            follower.stop()
            workers.shutdown()

    return lifespan


def create_node_app(ctx: ServiceContext, *, node: Address, follow_interval_s: float = 2.0,
                    anchor_signer: Signer | None = None,
                    anchor_interval_s: float = 60.0,
                    allow_origins: Sequence[str] = ()) -> FastAPI:
    """The proxy node's API over ``ctx`` (its own database, index, RPC), as ``node``; with
    ``anchor_signer`` (the node's own key, holding ANCHOR_ROLE) it anchors its own receipts
    every ``anchor_interval_s`` seconds, so an operator who alters its database is caught by
    ``kizuna audit threshold`` (the receipts no longer rebuild the node's anchored roots).
    ``allow_origins``: the web pages that may call the node from a browser (CORS, no
    credentials: the signed request is the authentication); none, no browser may."""
    node = checksum_address(node)
    origins = checked_origins(allow_origins)
    # The node's receipts name the node (kizuna.receipts.request.receipt_leaf): two nodes
    # serving one read keep different leaves, and the audit checks each against its node.
    from kizuna.receipts.store import ReceiptStore

    ctx = dataclasses.replace(ctx, receipts=ReceiptStore(ctx.db, node=node))
    if anchor_signer is not None and anchor_signer.address != node:
        raise InputError("anchor_signer", f"is {anchor_signer.address}, not the node {node}: a "
                                          "node anchors its own receipts with its own key")

    workers = ReadWorkers(READ_THREADS, name="kizuna-node-read")  # started by the first read
    node_metadata.create_all(ctx.db.engine)
    app = FastAPI(title="Kizuna proxy node", lifespan=_lifespan(
        ctx, workers, follow_interval_s=follow_interval_s, anchor_signer=anchor_signer,
        anchor_interval_s=anchor_interval_s))
    errors.install(app)
    # JSON bodies bounded in size and depth before any route reads them, as in the API
    # (kizuna.api.limits; the read route reads its body itself). Inside the CORS middleware,
    # so a refused body still carries the CORS headers the page needs to read why.
    app.add_middleware(BodyLimits, max_bytes=DEFAULT_MAX_JSON_BODY_BYTES,
                       routes=app.router.routes)
    if origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=False,
                           allow_methods=["GET", "POST"], allow_headers=["content-type"],
                           max_age=600)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "node": node}

    @app.post("/node/kfrags")
    def kfrags(body: NodeKfragIn) -> dict[str, Any]:
        return {"stored": accept_kfrag(ctx, node, body), "node": node}

    @app.post("/node/records")
    def records(body: NodeRecordIn) -> dict[str, Any]:
        return accept_record(ctx, body)

    async def read(http: Request) -> Response:
        # The read's arrival: its head is asked after this moment, possibly by a request
        # another read sent while this one waited for a read thread (kizuna.access.headrounds).
        arrived = ctx.access.arrival()
        # Parsed and checked once, as the service's read route does (kizuna.api.direct).
        request, signature = await signed_read(http)

        def serve() -> bytes:
            grant = serve_read(ctx, request=request, signature=signature, arrived=arrived)
            return node_read_answer(grant, statement_json(
                ctx, patient=grant.patient, scope_id=grant.scope_id, provider=request.provider,
                record_id=grant.record_id))

        # One hop to the node's read threads, as the service's read route (two threads:
        # Starlette's pool of 40 had every read contend for the interpreter lock).
        return Response(await workers.run(serve), media_type="application/json")

    async def read_documented(body: ReadIn) -> Response:
        """The body ``POST /node/reads`` takes, for the OpenAPI document and the body limits
        only: the route is served by ``read`` (kizuna.api.direct), never by this."""
        raise AssertionError("/node/reads is served by read()")

    app.router.add_api_route("/node/reads", read_documented, methods=["POST"],
                             route_class_override=served_by(read), name="read")
    return app


__all__ = ["NodeKfragIn", "NodeRecordIn", "accept_kfrag", "accept_record", "checked_origins",
           "create_node_app",
           "node_statements", "statement_json", "statement_of"]
