"""Canonicalising and sealing records in a pool of processes: the import pipeline's CPU-bound
steps.

A worker gets a validated resource (or its canonical bytes already), its record id and the
scope's delegating *public* key: no secret crosses the process boundary, and nothing here needs
the service. The resource becomes its record as the importer makes it
(:func:`~kizuna.storage.fhir.importer.record_for`: canonical JSON), and the record is sealed
exactly as :meth:`~kizuna.client.patient.PatientClient.seal` seals one
(:func:`~kizuna.storage.envelope.encrypt_bytes` to the scope's key of its epoch) and its
commitment computed (:func:`~kizuna.crypto.commitment.commitment_of`). The fork server the
workers come from imports this module once (kizuna.client.importer.start_pool).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.storage.envelope import encrypt_bytes
from kizuna.storage.fhir.importer import record_for
from kizuna.types import RecordId


@dataclass(frozen=True, slots=True)
class SealTask:
    """One record to seal: ``position`` is the caller's (the record's place in the import).
    Either ``resource`` (validated; canonicalised here) or ``content`` (canonical already)."""

    position: int
    record_id: bytes
    owner_key: bytes
    """The scope's delegating public key of the record's epoch (compressed point)."""
    content: bytes | None
    content_type: str | None
    resource: Mapping[str, Any] | None = None
    full_url: str | None = None


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed record: its envelope and the envelope's commitment."""

    position: int
    envelope: bytes
    commitment: bytes


_keys: dict[bytes, pre.UmbralPublicKey] = {}  # per worker: a scope key is parsed once


def die_with(parent: int) -> None:
    """A worker's initializer: exit as soon as ``parent`` (the importing process) is gone — a
    killed import must not leave its workers behind, waiting forever for work.

    The worker's own parent is the fork server (kizuna.client.importer.start_pool), which
    exits when the importing process does: the worker watches for either to go (its parent
    changing covers an importer that is gone but not yet reaped, a zombie ``kill(0)`` still
    finds)."""
    mine = os.getppid()

    def gone() -> bool:
        if os.getppid() != mine:
            return True
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by another user (a reused pid at worst)
            return False
        return False

    def watch() -> None:
        while not gone():
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="kizuna-seal-watch", daemon=True).start()


def seal_chunk(tasks: Sequence[SealTask]) -> list[Sealed]:
    """Seal ``tasks`` in order (run in a worker process)."""
    out: list[Sealed] = []
    for task in tasks:
        key = _keys.get(task.owner_key)
        if key is None:
            key = _keys[task.owner_key] = pre.UmbralPublicKey.from_bytes(task.owner_key)
        content, content_type = task.content, task.content_type
        if task.resource is not None:
            record = record_for(task.resource, full_url=task.full_url)
            content, content_type = record.content, record.content_type
        assert content is not None and content_type is not None
        envelope = bytes(encrypt_bytes(content, owner_key=key,
                                       record_id=RecordId(task.record_id),
                                       content_type=content_type))
        out.append(Sealed(task.position, envelope, bytes(commitment_of(envelope))))
    return out


__all__ = ["SealTask", "Sealed", "die_with", "seal_chunk"]
