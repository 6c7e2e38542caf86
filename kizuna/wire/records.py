"""Stored records as the service describes them, their JSON form on the API, and the limits of
their transfer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kizuna.batch import pack_proof, unpack_proof
from kizuna.errors import InputError
from kizuna.types import Address, Cid, Commitment, RecordId, ScopeId, checked_bytes32

MAX_BULK_RECORD_BYTES = 4 << 20
"""The largest envelope a bulk download carries (it is held in memory once on each side):
FHIR resources are a few KB; a file is downloaded alone, streamed."""

PART_SIZE = 8 << 20
"""The largest part of a multi-part upload (8 MiB): what one request carries, and about what a
client holds."""


@dataclass(frozen=True, slots=True)
class RecordInfo:
    """A stored, registered record: owner, blinded scope, where and what (no label, no
    plaintext)."""

    record_id: RecordId
    patient: Address
    scope_id: ScopeId
    cid: Cid
    commitment: Commitment
    size: int
    content_type: str
    created_at: int
    epoch: int = 0
    """The scope key epoch the record is encrypted to (docs/keys.md "Epochs")."""
    batch_root: bytes | None = None
    """The root of the batch the record was registered in (None: registered alone)."""
    leaf_index: int | None = None
    proof: bytes | None = None
    """The record's Merkle proof in its batch, packed (kizuna.batch.pack_proof)."""


def _hx(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _word(field: str, value: object) -> bytes:
    """32 bytes from ``0x`` hex, or ``InputError`` naming ``field``."""
    try:
        raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else value
    except ValueError:
        raise InputError(field, f"{value!r} is not hex") from None
    return checked_bytes32(field, raw)


def record_json(info: RecordInfo) -> dict[str, Any]:
    """``info`` as the API's ``RecordOut`` carries it: bytes as ``0x`` hex, a batch record's
    ``proof`` as its sibling words (the form of a read's answer and of a proxy node's record
    notice), ``None`` for a record registered alone. The one writer of a record's JSON (the
    routes' ``record_out``); :func:`record_of_json` is its one reader (the Python client)."""
    return {"record_id": _hx(info.record_id), "patient": info.patient,
            "scope_id": _hx(info.scope_id), "cid": info.cid,
            "commitment": _hx(info.commitment), "size": info.size,
            "content_type": info.content_type, "created_at": info.created_at,
            "epoch": info.epoch,
            "batch_root": _hx(info.batch_root) if info.batch_root is not None else None,
            "leaf_index": info.leaf_index,
            "proof": ([_hx(w) for w in unpack_proof(info.proof)]
                      if info.proof is not None else None)}


def record_of_json(body: Mapping[str, Any]) -> RecordInfo:
    """A :class:`RecordInfo` from its JSON (:func:`record_json`); a malformed field is an
    ``InputError`` naming it. Extra keys (``block_number``) are the caller's."""
    try:
        root, proof = body.get("batch_root"), body.get("proof")
        return RecordInfo(
            record_id=RecordId(_word("record_id", body["record_id"])),
            patient=body["patient"], scope_id=ScopeId(_word("scope_id", body["scope_id"])),
            cid=Cid(body["cid"]), commitment=Commitment(_word("commitment", body["commitment"])),
            size=int(body["size"]), content_type=str(body["content_type"]),
            created_at=int(body["created_at"]), epoch=int(body.get("epoch") or 0),
            batch_root=_word("batch_root", root) if root is not None else None,
            leaf_index=(int(body["leaf_index"]) if body.get("leaf_index") is not None
                        else None),
            proof=(pack_proof([_word(f"proof[{i}]", w) for i, w in enumerate(proof)])
                   if proof is not None else None))
    except KeyError as exc:
        raise InputError(str(exc.args[0]), "missing from the record") from None
    except (TypeError, ValueError) as exc:
        raise InputError("record", f"malformed: {exc}") from None


class EnvelopeTooLarge(InputError):
    """The uploaded envelope is larger than the configured limit (the API answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__("envelope", f"is larger than the limit of {limit} bytes")
        self.limit = limit
