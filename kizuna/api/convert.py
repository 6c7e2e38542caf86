"""Conversions between the API's schemas and the services' types (hex ↔ bytes, dataclasses →
answer models). Kept apart so routes stay three lines."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

from pydantic import BaseModel

from kizuna.api.schemas import AuthorizationIn, RecordOut
from kizuna.chain.eip712 import SignedAction, TypedData
from kizuna.errors import InputError
from kizuna.wire.onchain import SentTransaction
from kizuna.wire.reads import ReadGrant
from kizuna.wire.records import RecordInfo, record_json

M = TypeVar("M", bound=BaseModel)


def unhex(field: str, value: str) -> bytes:
    try:
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    except ValueError:
        raise InputError(field, "is not hex") from None


def hexed(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def authorization(body: AuthorizationIn) -> SignedAction | SentTransaction:
    if (body.signed is None) == (body.tx_hash is None):
        raise InputError("authorization", "give exactly one of 'signed' and 'tx_hash'")
    if body.tx_hash is not None:
        return SentTransaction.parse(body.tx_hash)
    assert body.signed is not None
    try:
        typed = TypedData.from_json(body.signed.typed_data)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("authorization.signed.typed_data", f"not EIP-712 typed data: {exc}") \
            from None
    return SignedAction(typed=typed, signature=unhex("signature", body.signed.signature))


def record_out(r: RecordInfo) -> RecordOut:
    """A record's answer, from its one JSON form (kizuna.wire.records.record_json)."""
    return RecordOut.model_validate(record_json(r))


def read_answer(g: ReadGrant) -> bytes:
    """The JSON of a :class:`ReadOut` for ``g``, written directly: the answer of every read,
    where building and dumping the model cost as much again (a test pins that it is exactly
    what ``ReadOut`` validates and dumps). One format string, not ``json.dumps`` of a dict:
    every member but two is a number or hex, which needs no escaping; the two free strings
    (``cid``, ``content_type``) are escaped as ``json.dumps`` escapes them. The envelope
    (base64: nothing to escape) is joined in as bytes, last."""
    head = _READ_ANSWER_HEAD.format(
        record_id=g.record_id.hex(), patient=_json_string(g.patient), scope_id=g.scope_id.hex(),
        cid=_json_string(g.cid), content_type=_json_string(g.content_type), size=int(g.size),
        capsule=g.capsule.hex(), cfrags=",".join(f'"0x{c.hex()}"' for c in g.cfrags),
        delegating_key=g.delegating_key.hex(), verifying_key=g.verifying_key.hex(),
        receipt_seq=int(g.receipt_seq), request_id=g.request_id.hex(),
        head_block=int(g.head_block), served_at=int(g.served_at), leaf=g.leaf.hex(),
        commitment="null" if g.commitment is None else f'"0x{g.commitment.hex()}"',
        batch_root="null" if g.batch_root is None else f'"0x{g.batch_root.hex()}"',
        proof=",".join(f'"0x{p.hex()}"' for p in g.proof)).encode()
    if g.envelope is None:
        return head + b'null}'
    return b"".join((head, b'"', base64.b64encode(g.envelope), b'"}'))


_json_string = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str
"""A JSON string literal, quotes included (non-ASCII as \\u escapes, as ``json.dumps``)."""

_READ_ANSWER_HEAD = (
    '{{"record_id":"0x{record_id}","patient":{patient},"scope_id":"0x{scope_id}","cid":{cid},'
    '"content_type":{content_type},"size":{size},"capsule":"0x{capsule}","cfrags":[{cfrags}],'
    '"delegating_key":"0x{delegating_key}","verifying_key":"0x{verifying_key}",'
    '"receipt_seq":{receipt_seq},"request_id":"0x{request_id}","head_block":{head_block},'
    '"served_at":{served_at},"leaf":"0x{leaf}","commitment":{commitment},'
    '"batch_root":{batch_root},"proof":[{proof}],"envelope_base64":')
"""``ReadOut``'s members in its order, as ``json.dumps(..., separators=(",", ":"))`` wrote
them; ``read_answer`` adds the envelope."""


def plain(value: object) -> object:
    """A service dataclass as JSON-ready data: bytes → 0x hex, sets → sorted lists, enums →
    their value, nested dataclasses / mappings / sequences converted likewise."""
    if isinstance(value, bytes | bytearray | memoryview):
        return hexed(bytes(value))
    if isinstance(value, Enum):
        return plain(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(str(plain(v)) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def shaped(model: type[M], value: object) -> M:
    """``value`` (a service dataclass) validated into the answer ``model``."""
    return model.model_validate(plain(value))
