"""The patient-side import pipeline: a whole FHIR history in seconds and one transaction.

``kizuna patient import`` runs it (docs/cli.md); so can any client holding a
:class:`~kizuna.client.patient.PatientClient`. For each import::

    parse + validate  (kizuna.storage.fhir: import_bundle / import_ndjson — every problem
        │              reported, nothing sent, when one is found; a Bundle's entry resources
        │              checked on the pool while this process walks the Bundle's references,
        │              bundle_source(pool=)); each resource's scope
        │              label, its record id, its scope's key (registered with the proxy once)
    canonicalise      in a pool of processes, all cores (kizuna.client.sealing: record_for,
    + seal + hash      then the envelope PatientClient.seal makes, to the scope's key of its
        │              current epoch, and its commitment)
    stage             POST /patient/staged, <= 500 envelopes a request, two requests in flight
        │              (envelopes in memory stay bounded, whatever the size of the import)
    register          one RegisterBatch signature per <= 50,000 records (a Merkle root over
                       (record id, scope id, commitment), kizuna.batch), relayed

**Record ids** are ``HMAC-SHA256(import id key, source digest || resource index)`` with the
key derived from the patient's wallet keys (:func:`~kizuna.crypto.wallet_keys.
derive_import_id_key`) and the source digest the SHA-256 of the input file's bytes (of the
files', in order, for NDJSON): nobody else can link an id to the file or the position, and a
re-run of the same file names the same records — so it finds what is registered (skipped),
what is staged (kept, if this machine's journal knows its commitment) and does the rest.

**Resumable.** The journal (``$KIZUNA_HOME/imports/<import digest>/<patient>/``) holds the
staged records' leaves (``staged.log``, appended after each staging answer) and, before a
batch's signature is sent anywhere, its manifest and signed action
(``batch-<root>.manifest`` / ``.json``, written atomically). A run killed at any point
is finished by the next one: first every batch in flight of this patient is submitted again
(the same manifest and signature — re-signed only when the deadline passed, the root being the
same; the service finishes a batch already on chain without a second transaction), then the
records not yet registered are staged (again, replacing, where needed) and registered. A record
id is registered at most once: the service refuses to stage an id that names a record.

The pool's processes are forked from :mod:`multiprocessing`'s *fork server* (a clean
interpreter started once per importing process, which imported the workers' modules once:
nothing of this process's threads or locks is copied into them; :func:`start_pool`), so a
script that runs an import must guard its entry point with ``if __name__ == "__main__":`` as
:mod:`multiprocessing` requires.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kizuna.batch import MAX_BATCH_RECORDS, BatchLeaf, BatchManifest
from kizuna.chain.eip712 import SignedAction, TypedData
from kizuna.client.sealing import Sealed, SealTask, die_with, seal_chunk
from kizuna.errors import (
    ChainError,
    ConfigError,
    InputError,
    IntegrityError,
    KizunaError,
    StoreUnavailable,
)
from kizuna.filemodes import private_dir
from kizuna.storage.fhir.importer import ImportedBundle, ImportedRecord, import_bundle
from kizuna.storage.fhir.jsonio import FhirJson
from kizuna.storage.fhir.ndjson import import_ndjson
from kizuna.storage.fhir.scopes import scope_label
from kizuna.storage.fhir.validate import Issue
from kizuna.types import Commitment, RecordId, ScopeId
from kizuna.wire.batches import BatchInfo, StagedEnvelope, StagedInfo

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.client.patient import PatientClient

log = logging.getLogger(__name__)

STAGE_SIZE = 500
"""Envelopes one staging request carries (the API takes up to 1,000)."""
BATCH_SIZE = 50_000
"""Records one ``RegisterBatch`` signature covers."""
SEAL_CHUNK = 64
"""Records one pool task seals (small enough to keep every core busy to the end)."""
VALIDATE_CHUNK = 128
"""Entry resources one pool task checks while the Bundle is validated."""
STAGE_IN_FLIGHT = 2
"""Staging requests on their way at once: one uploading while the service stores the other."""
DEADLINE_MARGIN_S = 300
"""A journalled signature with less than this left before its deadline is signed afresh."""


class RecordSource(Sized, Iterable[ImportedRecord], Protocol):
    """What the FHIR importer gives: validated records, produced one at a time."""


@dataclass(frozen=True, slots=True)
class ImportSource:
    """One validated input (a Bundle, or a set of NDJSON files) and its digest."""

    name: str
    digest: bytes
    """SHA-256 of the input's bytes: the first half of each record id's input."""
    records: RecordSource
    record_ids: Sequence[RecordId] | None = None
    """Each record's id, given by the caller (``kizuna.client.fhir_pull``: from the resource's
    source server, type, id and version); ``None``: :func:`record_id_of` the digest and index."""

    def record_id(self, key: bytes, index: int) -> RecordId:
        """The id of record ``index`` (given, or from the import id ``key``)."""
        if self.record_ids is not None:
            return self.record_ids[index]
        return record_id_of(key, self.digest, index)


def bundle_source(data: FhirJson, raw: bytes, *, name: str,
                  pool: ProcessPoolExecutor | None = None) -> ImportSource:
    """A Bundle, validated (:func:`~kizuna.storage.fhir.importer.import_bundle`: every problem
    in one ``FhirValidationError``, before anything is sealed); ``raw`` its file's bytes.
    ``pool`` (:func:`start_pool`'s): the entries' resources are checked on it, all cores,
    while this process walks the Bundle (references, codes) — the same problems found."""
    mapper = None
    if pool is not None:
        def mapper(check: Callable[[str, dict[str, Any]], list[Issue]], kinds: list[str],
                   resources: list[dict[str, Any]]) -> Iterator[list[Issue]]:
            return pool.map(check, kinds, resources, chunksize=VALIDATE_CHUNK)
    return ImportSource(name=name, digest=hashlib.sha256(raw).digest(),
                        records=import_bundle(data, entry_mapper=mapper))


def ndjson_source(paths: Sequence[Path]) -> ImportSource:
    """NDJSON files, validated together (:func:`~kizuna.storage.fhir.ndjson.import_ndjson`)."""
    records = import_ndjson(*paths)
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return ImportSource(name=", ".join(p.name for p in paths), digest=digest.digest(),
                        records=records)


def record_id_of(key: bytes, digest: bytes, index: int) -> RecordId:
    """The record id of resource ``index`` of the source with ``digest`` (module docstring)."""
    return RecordId(hmac.new(key, bytes(digest) + index.to_bytes(8, "big"),
                             hashlib.sha256).digest())


FILE_INDEX = 0
"""A file added on its own (a PDF, an image, a DICOM file, one FHIR resource) is record 0 of
the source whose digest is the SHA-256 of its bytes (docs/keys.md "Single files"): added again,
the same file names the same record, found in the record instead of added twice."""
DESCRIPTION_INDEX = 1
"""A document's DocumentReference is record 1 of its file's digest."""


def single_file_ids(key: bytes, source: str | os.PathLike[str]) -> tuple[RecordId, RecordId]:
    """(the file's record id, its description's record id): :data:`FILE_INDEX` and
    :data:`DESCRIPTION_INDEX` of the file's SHA-256 (read streamed, in constant memory)."""
    with open(source, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").digest()
    return record_id_of(key, digest, FILE_INDEX), record_id_of(key, digest, DESCRIPTION_INDEX)


def import_digest(sources: Sequence[ImportSource]) -> bytes:
    """What names an import's journal: the digests of its sources, in order."""
    return hashlib.sha256(b"".join(s.digest for s in sources)).digest()


# --- the journal ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StagedLeaf:
    """A record staged by an earlier run: its leaf and the key epoch it is sealed to."""

    leaf: BatchLeaf
    epoch: int


class Journal:
    """An import's state on the patient's machine (module docstring, "Resumable")."""

    def __init__(self, root: Path, digest: bytes, patient: str) -> None:
        self.root = root
        self.patient = patient
        self.directory = root / digest.hex() / patient.lower()

    def ensure(self) -> None:
        private_dir(self.directory)

    @property
    def _staged_log(self) -> Path:
        return self.directory / "staged.log"

    def staged(self) -> dict[bytes, StagedLeaf]:
        """Every record this import staged (the last line of an id wins: a re-stage)."""
        found: dict[bytes, StagedLeaf] = {}
        if not self._staged_log.exists():
            return found
        for line in self._staged_log.read_text("ascii").splitlines():
            parts = line.split()
            if len(parts) != 4:  # a line cut by a kill: the record is staged again
                continue
            try:
                rid, sid, commitment = (bytes.fromhex(p) for p in parts[:3])
                leaf = BatchLeaf(RecordId(rid), ScopeId(sid), Commitment(commitment))
                found[rid] = StagedLeaf(leaf, int(parts[3]))
            except (ValueError, InputError):
                continue
        return found

    def add_staged(self, leaves: Sequence[StagedLeaf]) -> None:
        with self._staged_log.open("a", encoding="ascii") as out:
            out.write("".join(f"{bytes(s.leaf.record_id).hex()} {bytes(s.leaf.scope_id).hex()} "
                              f"{bytes(s.leaf.commitment).hex()} {s.epoch}\n" for s in leaves))
            out.flush()
            os.fsync(out.fileno())

    def save_batch(self, manifest: BatchManifest, signed: SignedAction) -> None:
        """Write a batch about to be submitted: manifest, then signed action, each atomic."""
        stem = self.directory / f"batch-{manifest.root.hex()}"
        _write_atomic(stem.with_suffix(".manifest"), manifest.encode())
        _write_atomic(stem.with_suffix(".json"), json.dumps({
            "patient": self.patient, "typed_data": signed.typed.to_json(),
            "signature": "0x" + signed.signature.hex()}).encode())

    def batch_done(self, info: BatchInfo) -> None:
        stem = self.directory / f"batch-{bytes(info.root).hex()}"
        with (self.directory / "done.log").open("a", encoding="ascii") as out:
            out.write(f"{bytes(info.root).hex()} {info.count} {info.block_number} "
                      f"{_hex(info.tx_hash)}\n")
            out.flush()
            os.fsync(out.fileno())
        stem.with_suffix(".json").unlink(missing_ok=True)
        stem.with_suffix(".manifest").unlink(missing_ok=True)

    def drop_batch(self, root: bytes) -> None:
        stem = self.directory / f"batch-{bytes(root).hex()}"
        stem.with_suffix(".json").unlink(missing_ok=True)
        stem.with_suffix(".manifest").unlink(missing_ok=True)

    def in_flight(self) -> Iterator[tuple[Journal, BatchManifest, SignedAction]]:
        """Batches of this patient in flight in *any* import's journal (a kill can leave one
        in an import that is never run again in the same form)."""
        for signed_file in sorted(self.root.glob(f"*/{self.patient.lower()}/batch-*.json")):
            journal = Journal(self.root, bytes.fromhex(signed_file.parent.parent.name),
                              self.patient)
            try:
                document = json.loads(signed_file.read_text("utf-8"))
                signed = SignedAction(TypedData.from_json(document["typed_data"]),
                                      bytes.fromhex(document["signature"].removeprefix("0x")))
                manifest = BatchManifest.decode(
                    signed_file.with_suffix(".manifest").read_bytes(),
                    root=bytes.fromhex(signed_file.stem.removeprefix("batch-")))
            except (OSError, ValueError, KeyError, KizunaError) as exc:
                # Written atomically, so only a hand-edited journal gets here: the batch was
                # never sent with this content; its records are staged again if needed.
                log.warning("ignoring unreadable journal entry %s: %s", signed_file, exc)
                continue
            yield journal, manifest, signed


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _hex(value: bytes | str | None) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


# --- the pipeline -----------------------------------------------------------------------------


@dataclass(slots=True)
class ImportResult:
    """What an import did (``resources``: every resource of the input)."""

    resources: int = 0
    already_registered: int = 0
    """Resources a run before had registered: skipped."""
    reused_staged: int = 0
    """Resources staged by a run before, registered now without sealing them again."""
    staged: int = 0
    """Resources sealed and staged by this run."""
    registered: int = 0
    """Resources registered by this run (in :attr:`batches`)."""
    batches: list[BatchInfo] = field(default_factory=list)
    manifests: list[BatchManifest] = field(default_factory=list, repr=False)
    """The manifest of each of :attr:`batches`."""
    by_scope: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"imported": self.resources, "registered": self.registered,
                "already_registered": self.already_registered, "staged": self.staged,
                "reused_staged": self.reused_staged,
                "batches": [{"root": _hex(b.root), "count": b.count,
                             "block_number": b.block_number, "tx_hash": _hex(b.tx_hash)}
                            for b in self.batches],
                "tx_hashes": [_hex(b.tx_hash) for b in self.batches if b.tx_hash],
                "by_scope": dict(sorted(self.by_scope.items())),
                "seconds": round(self.seconds, 3)}


Progress = Callable[[int, int], None]
"""``(done, total)``: resources done (registered before, or staged now) of the import."""


@dataclass(slots=True)
class _Pending:
    """A record on its way: what its leaf and its staging need once it is sealed."""

    record_id: RecordId
    scope_id: ScopeId
    epoch: int


_Payload = ImportedRecord | tuple[Mapping[str, Any], str | None]
"""A record made already, or a validated resource and its ``fullUrl`` (made in the pool)."""
_Work = tuple[int, _Payload, _Pending]


@dataclass(slots=True)
class _Plan:
    """What an import run found done before it sealed anything (:meth:`Importer._plan`)."""

    id_key: bytes
    finished: set[bytes]
    registered: set[bytes]
    staged_remote: set[bytes]
    staged_here: dict[bytes, StagedLeaf]
    done: int = 0
    """Resources done so far: registered before, reused, or staged by this run."""


class _SealAndStage:
    """Seals records on the pool and stages them, with bounded memory: at most
    ``2 * workers`` chunks sealing, one staging request filling, :data:`STAGE_IN_FLIGHT`
    on their way."""

    def __init__(self, importer: Importer, pool: ProcessPoolExecutor, journal: Journal,
                 leaves: dict[int, BatchLeaf], result: ImportResult, *,
                 on_staged: Callable[[int], object]) -> None:
        self.importer = importer
        self.pool = pool
        self.journal = journal
        self.leaves = leaves
        self.result = result
        self.on_staged = on_staged
        self.pending: dict[int, _Pending] = {}
        self.sealing: deque[Future[list[Sealed]]] = deque()
        self.staging: deque[tuple[Future[list[StagedInfo]], list[StagedLeaf]]] = deque()
        self.filling: list[tuple[StagedEnvelope, StagedLeaf, int]] = []

    def run(self, work: Iterator[_Work]) -> None:
        with ThreadPoolExecutor(max_workers=STAGE_IN_FLIGHT,
                                thread_name_prefix="kizuna-stage") as uploads:
            try:
                for chunk in _chunks(work, SEAL_CHUNK):
                    self.sealing.append(self.pool.submit(seal_chunk, self._tasks(chunk)))
                    while len(self.sealing) > 2 * self.importer.workers:
                        self._sealed(uploads)
                while self.sealing:
                    self._sealed(uploads)
                while self.filling:
                    self._send(uploads)
                while self.staging:
                    self._answered()
            finally:
                for future in self.sealing:
                    future.cancel()

    def _tasks(self, chunk: list[_Work]) -> list[SealTask]:
        tasks = []
        for position, payload, info in chunk:
            self.pending[position] = info
            key = self.importer._owner_key(info.scope_id, info.epoch)
            if isinstance(payload, ImportedRecord):
                tasks.append(SealTask(position, bytes(info.record_id), key,
                                      payload.content, payload.content_type))
            else:  # canonicalised by the worker
                tasks.append(SealTask(position, bytes(info.record_id), key, None, None,
                                      resource=payload[0], full_url=payload[1]))
        return tasks

    def _sealed(self, uploads: ThreadPoolExecutor) -> None:
        for one in self.sealing.popleft().result():
            info = self.pending.pop(one.position)
            leaf = BatchLeaf(info.record_id, info.scope_id, Commitment(one.commitment))
            self.filling.append((StagedEnvelope(record_id=info.record_id,
                                                scope_id=info.scope_id, epoch=info.epoch,
                                                envelope=one.envelope),
                                 StagedLeaf(leaf, info.epoch), one.position))
        while len(self.filling) >= self.importer.stage_size:
            self._send(uploads)

    def _send(self, uploads: ThreadPoolExecutor) -> None:
        size = self.importer.stage_size
        chunk, self.filling[:] = self.filling[:size], self.filling[size:]
        while len(self.staging) >= STAGE_IN_FLIGHT:
            self._answered()
        client = self.importer.client
        self.staging.append((uploads.submit(client.service.stage_envelopes,
                                            patient=client.address,
                                            items=[item for item, _, _ in chunk]),
                             [leaf for _, leaf, _ in chunk]))
        for _, leaf, position in chunk:
            self.leaves[position] = leaf.leaf

    def _answered(self) -> None:
        future, sent = self.staging.popleft()
        infos = future.result()
        if len(infos) != len(sent):
            raise IntegrityError(f"the service answered {len(infos)} staged envelopes for "
                                 f"{len(sent)} sent")
        for info, mine in zip(infos, sent, strict=True):
            if (bytes(info.record_id) != bytes(mine.leaf.record_id)
                    or bytes(info.commitment) != bytes(mine.leaf.commitment)):
                raise IntegrityError(f"the service staged record "
                                     f"0x{bytes(info.record_id).hex()} with another "
                                     "commitment than it was sent")
        self.journal.add_staged(sent)
        self.result.staged += len(sent)
        self.on_staged(len(sent))
        if self.importer.on_stage is not None:
            self.importer.on_stage(self.result.staged)


class Importer:
    """Runs imports for one patient (see the module docstring)."""

    def __init__(self, client: PatientClient, *, journal_root: Path,
                 workers: int | None = None, stage_size: int = STAGE_SIZE,
                 batch_size: int = BATCH_SIZE, on_progress: Progress | None = None,
                 on_stage: Callable[[int], None] | None = None,
                 pool: ProcessPoolExecutor | None = None) -> None:
        if not 1 <= stage_size <= 1000:
            raise InputError("stage_size", "must be between 1 and 1000")
        if not 1 <= batch_size <= MAX_BATCH_RECORDS:
            raise InputError("batch_size", f"must be between 1 and {MAX_BATCH_RECORDS}")
        self.client = client
        self.journal_root = journal_root
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        if self.workers < 1:
            raise InputError("workers", "must be at least 1")
        self.stage_size = stage_size
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.on_stage = on_stage
        """Called with the count of records staged so far after each staging answer (tests
        and the benchmark stop an import half way with it)."""
        self.pool = pool
        """A pool of :func:`start_pool` the caller started before validating the input, so
        that its processes come up meanwhile (else each run starts its own); :meth:`run`
        shuts it down."""
        self._keys: dict[tuple[bytes, int], bytes] = {}
        self._scopes: dict[str, tuple[ScopeId, int]] = {}

    @property
    def patient(self) -> str:
        return str(self.client.address)

    def run(self, sources: Sequence[ImportSource]) -> ImportResult:
        """Import ``sources`` (validated already: :func:`bundle_source`, :func:`ndjson_source`)."""
        started = time.monotonic()
        result = ImportResult(resources=sum(len(s.records) for s in sources))
        journal = Journal(self.journal_root, import_digest(sources), self.patient)
        journal.ensure()
        # The pool starts now (unless the caller started it before validating): its processes
        # come up while the service is asked what is done.
        pool = self.pool if self.pool is not None else start_pool(self.workers)
        closing: threading.Thread | None = None
        try:
            self._finish_in_flight(journal, result)
            plan = self._plan(sources, journal, result)
            leaves: dict[int, BatchLeaf] = {}

            def staged(count: int) -> None:
                plan.done += count
                self._progress(plan.done, result)

            self._progress(plan.done, result)
            _SealAndStage(self, pool, journal, leaves, result, on_staged=staged).run(
                self._todo(sources, plan, leaves, result))
            self._progress(plan.done, result)
            ordered = [leaves[p] for p in sorted(leaves)]
            # The workers wind down while the batch is registered. (Not shutdown(wait=False):
            # Python 3.11's exit handler can then fail on the pool's closed wake-up pipe.)
            closing = threading.Thread(target=pool.shutdown, name="kizuna-seal-close")
            closing.start()
        finally:
            if closing is None:
                pool.shutdown(wait=True, cancel_futures=True)
        for start in range(0, len(ordered), self.batch_size):
            manifest = BatchManifest.of(ordered[start:start + self.batch_size])
            signed = self.client.sign_batch_registration(manifest, self._deadline())
            journal.save_batch(manifest, signed)
            self._submit(journal, manifest, signed, result)
        closing.join()
        result.seconds = time.monotonic() - started
        return result

    def _progress(self, done: int, result: ImportResult) -> None:
        if self.on_progress is not None:
            self.on_progress(done, result.resources)

    def _plan(self, sources: Sequence[ImportSource], journal: Journal,
              result: ImportResult) -> _Plan:
        """What is done already: registered (by the service's word), finished by this run's
        resumed batches, staged here and there; and every scope with a record still to
        import, registered with the proxy up front, in parallel (a finished import run again
        registers nothing, asks nothing)."""
        service = self.client.service
        plan = _Plan(
            id_key=self.client.keys.wallet.import_id_key().reveal(),
            finished={bytes(leaf.record_id) for batch in result.manifests
                      for leaf in batch.leaves},
            registered={bytes(r.record_id)
                        for r in service.list_records(patient=self.client.address)},
            staged_remote={bytes(r) for r in service.staged_ids(patient=self.client.address)},
            staged_here=journal.staged())
        needed = {label for source in sources
                  for index, (label, _) in enumerate(_items(source.records, labels_only=True))
                  if bytes(source.record_id(plan.id_key, index)) not in plan.registered}
        if needed:
            self._scopes.update(self.client.scopes_and_epochs(sorted(needed)))
        return plan

    def _todo(self, sources: Sequence[ImportSource], plan: _Plan,
              leaves: dict[int, BatchLeaf], result: ImportResult) -> Iterator[_Work]:
        """The records still to seal, in order; the registered ones are counted and skipped,
        and a record staged by an earlier run (same scope and epoch) is reused as it is."""
        position = 0
        for source in sources:
            for index, (label, payload) in enumerate(_items(source.records)):
                assert payload is not None
                rid = source.record_id(plan.id_key, index)
                result.by_scope[label] = result.by_scope.get(label, 0) + 1
                here = position
                position += 1
                if bytes(rid) in plan.registered:
                    if bytes(rid) not in plan.finished:  # not by a batch of this run's
                        result.already_registered += 1
                    plan.done += 1
                    continue
                sid, epoch = self._scope(label)
                known = plan.staged_here.get(bytes(rid))
                if (known is not None and bytes(rid) in plan.staged_remote
                        and bytes(known.leaf.scope_id) == bytes(sid)
                        and known.epoch == epoch):
                    leaves[here] = known.leaf
                    result.reused_staged += 1
                    plan.done += 1
                    continue
                yield here, payload, _Pending(rid, sid, epoch)

    # -- steps -------------------------------------------------------------------------------

    def _deadline(self) -> int:
        return self.client.service.chain_time() + self.client.deadline_s

    def _scope(self, label: str) -> tuple[ScopeId, int]:
        """The scope id and current epoch of ``label``, its keys registered with the proxy
        (once per import: ``PatientClient.scope_and_epoch``)."""
        found = self._scopes.get(label)
        if found is None:
            found = self._scopes[label] = self.client.scope_and_epoch(label)
        return found

    def _owner_key(self, scope_id: ScopeId, epoch: int) -> bytes:
        key = (bytes(scope_id), epoch)
        found = self._keys.get(key)
        if found is None:
            found = self._keys[key] = self.client.keys.scope_public(scope_id, epoch).to_bytes()
        return found

    def _finish_in_flight(self, journal: Journal, result: ImportResult) -> None:
        """Submit again every batch a killed run left in flight (module docstring)."""
        for owner, manifest, signed in journal.in_flight():
            if signed.patient != self.client.address:
                continue
            if int(signed.typed.message["deadline"]) < (self.client.service.chain_time()
                                                        + DEADLINE_MARGIN_S):
                # Not sent in time, or sent and mined: either way the same root signed again
                # is right (the service finishes a root already on chain without a new tx).
                signed = self.client.sign_batch_registration(manifest, self._deadline())
                owner.save_batch(manifest, signed)
            try:
                self._submit(owner, manifest, signed, result)
            except (ChainError, StoreUnavailable):
                raise  # the node or the store is down: nothing is known, try again later
            except KizunaError as exc:
                if self._on_chain(manifest.root):
                    raise
                # Never registered, and the service will not take it as it is (its staged
                # envelopes expired, say): forget it; its records are staged and batched anew.
                log.warning("batch 0x%s of an earlier run is not on chain and was refused "
                            "(%s): its records are imported again", manifest.root.hex(), exc)
                owner.drop_batch(manifest.root)

    def _on_chain(self, root: bytes) -> bool:
        chain: Chain | None
        try:
            chain = self.client.chain
        except ConfigError:  # in-process: the service's own connection is the chain's too
            chain = getattr(self.client.service, "chain", None)
        if chain is None:
            return True  # cannot tell: keep the journal, report the error
        return chain.ledger.batch_of(root) is not None

    def _submit(self, journal: Journal, manifest: BatchManifest, signed: SignedAction,
                result: ImportResult) -> None:
        info = self.client.service.register_batch(patient=self.client.address,
                                                  manifest=manifest, registration=signed)
        journal.batch_done(info)
        result.batches.append(info)
        result.manifests.append(manifest)
        result.registered += info.count


def _items(records: RecordSource, *,
           labels_only: bool = False) -> Iterator[tuple[str, _Payload | None]]:
    """Each record of a source with its scope label: a Bundle's as its validated resource (the
    pool canonicalises it: ``record_for``), others as the importer made them. ``labels_only``:
    the labels (a Bundle's without making a record; NDJSON files are read for them)."""
    if isinstance(records, ImportedBundle):
        for resource, full_url in records.entries():
            yield str(scope_label(resource)), None if labels_only else (resource, full_url)
    else:
        for record in records:
            yield str(record.scope_label), None if labels_only else record


def _chunks(items: Iterator[_Work], size: int) -> Iterator[list[_Work]]:
    chunk: list[_Work] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


POOL_PRELOAD = ["__main__", "kizuna.client.sealing", "kizuna.storage.fhir.validate"]
"""What the fork server imports once, before it forks any worker: the main module (which a
worker would import again otherwise), the sealing and the Bundle checks the workers run."""


def start_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """Worker processes forked from the fork server, all started at once so that they come up
    while the service is asked what is done.

    Not ``fork``: this process has threads (the API's, the staging requests', a sibling
    import's) whose locks a forked child could inherit held. Not ``spawn`` either: each
    worker was a fresh interpreter importing the main module and the workers' modules again
    (~0.4 CPU-s a worker, every import). The fork server is single-threaded and clean: started
    (once for this process's life, by :mod:`multiprocessing`) as a fresh interpreter that
    imports :data:`POOL_PRELOAD` and does nothing else, so a worker forked from it copies no
    thread, no lock and no key of this process, and no random state either (the envelopes'
    keys and nonces come from ``os.urandom`` in the worker, per record)."""
    workers = workers if workers is not None else (os.cpu_count() or 1)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(POOL_PRELOAD)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=die_with, initargs=(os.getpid(),))
    failed: list[BaseException] = []

    def start_workers() -> None:
        try:
            for _ in range(workers):
                pool.submit(seal_chunk, [])
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    # The workers are started on a thread of their own, which a signal never interrupts: a
    # Ctrl-C or SIGTERM raised inside Process.start() (the fork server may take a second to
    # come up) left a worker the pool did not know of, which found the pool's semaphores gone
    # when this process exited and printed its traceback on the user's terminal.
    starting = threading.Thread(target=start_workers, name="kizuna-seal-start")
    starting.start()
    try:
        starting.join()
    except BaseException:
        starting.join()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    if failed:
        pool.shutdown(wait=True, cancel_futures=True)
        raise failed[0]
    return pool


__all__ = [
    "BATCH_SIZE",
    "DESCRIPTION_INDEX",
    "FILE_INDEX",
    "POOL_PRELOAD",
    "STAGE_SIZE",
    "ImportResult",
    "ImportSource",
    "Importer",
    "Journal",
    "bundle_source",
    "import_digest",
    "ndjson_source",
    "record_id_of",
    "single_file_ids",
    "start_pool",
]
