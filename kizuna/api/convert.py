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
    what ``ReadOut`` validates and dumps). The envelope (base64: nothing to escape) is joined
    in as bytes, last: through ``json.dumps`` its ~14 KB string was scanned for escapes, half
    of the answer's cost."""
    head = json.dumps({
        "record_id": hexed(g.record_id), "patient": g.patient, "scope_id": hexed(g.scope_id),
        "cid": g.cid, "content_type": g.content_type, "size": g.size,
        "capsule": hexed(g.capsule), "cfrags": [hexed(c) for c in g.cfrags],
        "delegating_key": hexed(g.delegating_key), "verifying_key": hexed(g.verifying_key),
        "receipt_seq": g.receipt_seq, "request_id": hexed(g.request_id),
        "head_block": g.head_block, "served_at": g.served_at, "leaf": hexed(g.leaf),
        "commitment": hexed(g.commitment) if g.commitment is not None else None,
        "batch_root": hexed(g.batch_root) if g.batch_root is not None else None,
        "proof": [hexed(p) for p in g.proof],
    }, separators=(",", ":")).encode()
    if g.envelope is None:
        return head[:-1] + b',"envelope_base64":null}'
    return b"".join((head[:-1], b',"envelope_base64":"', base64.b64encode(g.envelope), b'"}'))


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
