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
  on-chain commitment. Records registered in a batch are not accepted yet (the node would need
  the batch's manifest; docs/proxies.md).
* ``POST /node/reads``: the provider's signed read; no session — the request's own EIP-712
  signature is the provider's authentication, as inside ``serve_read``.

Revocation reaches the node through its own :class:`~kizuna.services.follower.IndexFollower`,
which deletes the fragments of every grant its own index saw end; the access check refuses at
the head whatever the database still holds.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from kizuna.api import errors
from kizuna.api.convert import read_answer, unhex
from kizuna.api.schemas import ReadIn
from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.crypto.wallet_keys import checked_epoch
from kizuna.db import schema as t
from kizuna.errors import ConflictError, InputError, IntegrityError, NotFoundError
from kizuna.proxy.threshold import NodeKfrag, accept_node_kfrag
from kizuna.receipts.request import ReadRequest
from kizuna.services.context import ServiceContext
from kizuna.services.read import serve_read
from kizuna.storage.envelope import read_header
from kizuna.types import Address, RecordId, ScopeId, checksum_address

log = logging.getLogger(__name__)

MAX_NODE_ENVELOPE_BYTES = 64 * 1024 * 1024
"""A record the node hashes whole when it is handed (the envelope's SHA-256 is its commitment)."""

Hex = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]*$", max_length=20_000)]


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
    return ctx.kfrags.put(patient=statement.patient, scope_id=statement.scope_id,
                          provider=statement.provider, receiving_key=receiving,
                          kfrags=[statement.kfrag], epoch=statement.epoch)


def accept_record(ctx: ServiceContext, body: NodeRecordIn) -> dict[str, Any]:
    """Know a record to serve, from the chain (this node's index) and the content store."""
    record_id = RecordId(unhex("record_id", body.record_id))
    if len(record_id) != 32:
        raise InputError("record_id", "must be exactly 32 bytes")
    epoch = checked_epoch("epoch", body.epoch)
    ctx.index.head()  # this node's index, synced to its node's head
    registered = ctx.index.index.record(record_id)
    if registered is None:
        raise NotFoundError(f"record 0x{bytes(record_id).hex()} is not registered on-chain")
    if registered.batch_root is not None:
        raise InputError("record_id", "records registered in a batch are not served by proxy "
                                      "nodes yet (docs/proxies.md)")
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
           "epoch": epoch}
    from sqlalchemy import select
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


def create_node_app(ctx: ServiceContext, *, node: Address,
                    follow_interval_s: float = 2.0) -> FastAPI:
    """The proxy node's API over ``ctx`` (its own database, index, RPC), as ``node``."""
    node = checksum_address(node)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from kizuna.services.follower import IndexFollower

        follower = IndexFollower(ctx, interval_s=follow_interval_s)
        follower.start()
        try:
            yield
        finally:
            follower.stop()

    app = FastAPI(title="Kizuna proxy node", lifespan=lifespan)
    errors.install(app)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "node": node}

    @app.post("/node/kfrags")
    def kfrags(body: NodeKfragIn) -> dict[str, Any]:
        return {"stored": accept_kfrag(ctx, node, body), "node": node}

    @app.post("/node/records")
    def records(body: NodeRecordIn) -> dict[str, Any]:
        return accept_record(ctx, body)

    @app.post("/node/reads")
    async def read(body: ReadIn, http: Request) -> Response:
        request = ReadRequest.from_json(body.request.model_dump(by_alias=True))
        signature = unhex("signature", body.signature)
        grant = await run_in_threadpool(functools.partial(
            serve_read, ctx, request=request, signature=signature))
        return Response(read_answer(grant), media_type="application/json")

    return app


__all__ = ["NodeKfragIn", "NodeRecordIn", "accept_kfrag", "accept_record", "create_node_app",
           "statement_of"]
