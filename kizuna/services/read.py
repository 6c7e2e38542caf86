"""``serve_read``: a provider's read, from the signed request to the capsule fragments.

The path (docs/service.md, "The data path of a read")::

    verify the request (signer = provider, issuedAt fresh)
    → access check at the chain head (the only source of a VerifiedGrant)
    → the (patient, scope, provider) key fragments, verified
    → the record's capsule (envelope preamble only, cached per CID)
    → re-encrypt: one capsule fragment per key fragment
    → a small envelope (≤ ``read_inline_max_bytes``) read whole from the store, verified
      against its CID, to travel inside the answer (one request per read instead of two)
    → persist the receipt (committed) BEFORE answering; its UNIQUE requestId is the replay
      check, across threads and instances (no separate look-up first: a replay costs the
      refused request its access check, an honest read saves a database round trip)
    → ReadGrant

If anything fails after the access check, no receipt is written and nothing is returned; if
the receipt cannot be written (replay found by the UNIQUE insert, database down), the capsule
fragments are dropped: no answer without evidence.
"""

from __future__ import annotations

import time

from kizuna.batch import unpack_proof
from kizuna.crypto import pre
from kizuna.errors import AccessDenied, IntegrityError, NotFoundError
from kizuna.receipts.request import ReadRequest, verify_request
from kizuna.services.context import ServiceContext
from kizuna.services.emergency import kit_kfrags
from kizuna.services.refusals import record_refusal
from kizuna.types import Cid
from kizuna.wire.reads import ReadGrant


class NoKeyFragments(AccessDenied):
    """The grant is live but the patient has not handed key fragments for it to the proxy."""


def serve_read(ctx: ServiceContext, *, request: ReadRequest, signature: bytes,
               now: int | None = None, arrived: int | None = None) -> ReadGrant:
    """Serve one signed read request (see the module docstring). Raises ``InputError`` for a
    malformed signature, ``AccessDenied`` subclasses for a wrong signer / stale / replayed
    request / no live grant / no key fragments, ``NotFoundError`` for an unknown record.
    ``arrived``: ``ctx.access.arrival()`` taken when the request reached the service (the
    head is asked after it); default: when this call begins."""
    verify_request(request, signature, ctx.domain, now=now, max_skew=ctx.max_clock_skew_s)
    try:
        grant = ctx.access.check_read(provider=request.provider, record_id=request.record_id,
                                      patient=request.patient, arrived=arrived)
    except (AccessDenied, NotFoundError) as refusal:
        # A signed request the access check refused leaves a trace for the patient and the
        # auditors (kizuna.services.refusals); the refusal itself is re-raised unchanged.
        record_refusal(ctx, request=request, error=refusal, now=now)
        raise
    record = ctx.records.get(request.record_id)
    # A break-glass read is served with the patient's emergency kit alone, never with
    # fragments a dead grant of the scope left behind (kizuna.services.emergency).
    # The fragments of the record's key epoch (docs/keys.md "Epochs").
    stored = (kit_kfrags(ctx, grant, epoch=record.epoch) if grant.by_emergency
              else ctx.kfrags.get(patient=grant.patient, scope_id=grant.scope_id,
                                  provider=grant.grantee, epoch=record.epoch))
    if stored is None:
        raise NoKeyFragments(f"{grant.patient} has not given the proxy key fragments for "
                             f"{grant.grantee} on this scope")
    capsule = ctx.capsules.capsule(record.cid, record_id=record.record_id)
    cfrags = tuple(pre.reencrypt(capsule, kfrag, grant=grant).to_bytes()
                   for kfrag in stored.kfrags)
    envelope = _inline_envelope(ctx, cid=record.cid, size=record.size)
    served_at = int(time.time()) if now is None else now
    receipt = ctx.receipts.record(request=request, signature=signature, scope_id=grant.scope_id,
                                  served_at=served_at, head_block=grant.checked_at_block)
    return ReadGrant(record_id=record.record_id, patient=record.patient,
                     scope_id=record.scope_id, cid=record.cid,
                     content_type=record.content_type, size=record.size,
                     capsule=capsule.to_bytes(), cfrags=cfrags,
                     delegating_key=stored.delegating_key.to_bytes(),
                     verifying_key=stored.verifying_key.to_bytes(), receipt_seq=receipt.seq,
                     request_id=request.request_id, head_block=grant.checked_at_block,
                     served_at=served_at, leaf=receipt.leaf, envelope=envelope,
                     commitment=record.commitment, batch_root=record.batch_root,
                     proof=tuple(unpack_proof(record.proof or b"")))


def _inline_envelope(ctx: ServiceContext, *, cid: Cid, size: int) -> bytes | None:
    """The envelope under ``cid`` when it is at most ``read_inline_max_bytes``. Read before the
    receipt is written: a store that fails here leaves no receipt of an unanswered read. The
    store verifies the bytes against the CID as it reads them."""
    if size > ctx.read_inline_max_bytes:
        return None
    with ctx.store.get(cid) as stream:
        data = stream.read()
    if len(data) != size:
        raise IntegrityError(f"the envelope under {cid} is {len(data)} bytes, not {size}")
    return data


__all__ = ["NoKeyFragments", "ReadGrant", "serve_read"]
