"""The patient's bulk read: many of their records downloaded and decrypted on their side, fast.

A loop of :meth:`PatientClient.read_own` costs three round trips a record. The bulk path costs,
for the whole history::

    ONE listing (the records' metadata)          ─┐
    ONE lookup of every commitment on the chain   ├─ then the envelopes, 256 to a request
        (``onchain_commitments``: one eth_getLogs ─┘   (files alone, streamed), requests on a
         of the patient's RecordRegistered and         pool of threads, each envelope checked
         RecordBatchRegistered events on the own       against the chain's commitment and
         node, plus one manifest per batch, or the     decrypted, handed on in listing order
         event index)

The trust model is the single read's: every envelope is checked against the commitment the
chain holds for it (an ``IntegrityError`` otherwise) — for a record registered in a batch, its
leaf in the batch's manifest, which counts only when it rebuilds to the root on chain
(:class:`kizuna.client.chainview.BatchManifests`); a record the chain has no registration of
is refused the same way. :func:`export` writes FHIR resources as NDJSON or a FHIR ``Bundle``
(``collection``), streamed, and the files (PDF, images, DICOM) beside them — or skips them.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, TypeVar

from kizuna.errors import InputError, IntegrityError
from kizuna.storage.envelope import decrypt_to
from kizuna.types import Commitment, ScopeLabel
from kizuna.wire.records import MAX_BULK_RECORD_BYTES, RecordInfo

if TYPE_CHECKING:
    from collections.abc import Mapping

    from kizuna.client.patient import PatientClient
    from kizuna.client.provider import ProviderClient, ProviderRead
    from kizuna.crypto import pre

DEFAULT_WORKERS = 4
"""Requests in flight: enough to hide the round trip's latency, few enough for two cores."""
BULK_CHUNK = 256
"""Records one bulk request carries: the most the API takes (MAX_BULK_RECORDS), so a history
of 5,000 costs ~20 requests, each checked with one query on the service's side."""

FHIR_JSON_TYPES = frozenset({"application/fhir+json", "application/json"})
"""Records holding one FHIR resource as JSON (what the importer and the page write)."""
FHIR_NDJSON_TYPE = "application/fhir+ndjson"

Format = Literal["ndjson", "bundle"]

T = TypeVar("T")

_EXTENSIONS = {
    "application/pdf": ".pdf", "application/dicom": ".dcm", "image/png": ".png",
    "image/jpeg": ".jpg", "image/gif": ".gif", "image/tiff": ".tiff", "image/webp": ".webp",
    "text/plain": ".txt",
}


def base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_fhir(record: RecordInfo) -> bool:
    """Whether a record holds FHIR resources (JSON or NDJSON) rather than a file."""
    kind = base_type(record.content_type)
    return kind in FHIR_JSON_TYPES or kind == FHIR_NDJSON_TYPE


def file_name(record: RecordInfo) -> str:
    """A file record's name in the export: its record id — what its ``DocumentReference`` /
    ``ImagingStudy`` points at (``urn:kizuna:record:0x...``) — and an extension."""
    extension = _EXTENSIONS.get(base_type(record.content_type), ".bin")
    return f"0x{bytes(record.record_id).hex()}{extension}"


@dataclass(frozen=True, slots=True)
class Opened:
    """One record read back: its metadata, its scope label (when this client can name it),
    and either its decrypted ``content`` or, for a file written to disk, its ``path``."""

    record: RecordInfo
    label: ScopeLabel | None
    content: bytes | None = None
    path: Path | None = None


def read_many(client: PatientClient, records: Sequence[RecordInfo], *,
              workers: int = DEFAULT_WORKERS,
              destination: Callable[[RecordInfo], Path | None] | None = None,
              commitments: Mapping[bytes, Commitment] | None = None) -> Iterator[Opened]:
    """Download and decrypt ``records`` (the patient's own) concurrently, in their order.

    The registered commitments come from one bulk lookup (``commitments``, else
    ``client.service.onchain_commitments``), not one chain query per record. Records read
    into memory travel :data:`BULK_CHUNK` to a request (``own_envelopes``); ``destination``
    names a file to stream a record into instead (constant memory, for large files; ``None``
    for a record: into memory). At most ``2 * workers`` requests are in flight or waiting, so
    memory stays flat for any number of records."""
    if workers < 1:
        raise InputError("workers", "must be at least 1")
    registered = (commitments if commitments is not None
                  else client.service.onchain_commitments(patient=client.address))
    reader = _OwnReader(client, records, registered)
    for opened_run in pipelined(reader.units(records, destination), workers=workers):
        yield from opened_run


class _OwnReader:
    """The units of work of :func:`read_many`, each checked against the chain's commitment."""

    def __init__(self, client: PatientClient, records: Sequence[RecordInfo],
                 registered: Mapping[bytes, Commitment]) -> None:
        self.client = client
        self.registered = registered
        self.secrets: dict[tuple[bytes, int], pre.UmbralSecretKey] = {}
        for record in records:  # derived once per (scope, epoch), here: not raced by threads
            key = (bytes(record.scope_id), record.epoch)
            if key not in self.secrets:
                self.secrets[key] = client.keys.scope_secret(record.scope_id, record.epoch)

    def units(self, records: Sequence[RecordInfo],
              destination: Callable[[RecordInfo], Path | None] | None
              ) -> Iterator[Callable[[], list[Opened]]]:
        """The work in listing order: runs of small records (one request each run), and
        each record streamed to a file alone."""
        chunk: list[RecordInfo] = []
        for record in records:
            path = destination(record) if destination is not None else None
            if path is None and record.size <= MAX_BULK_RECORD_BYTES:
                chunk.append(record)
                if len(chunk) == BULK_CHUNK:
                    yield partial(self.in_memory, chunk)
                    chunk = []
                continue
            if chunk:
                yield partial(self.in_memory, chunk)
                chunk = []
            if path is None:  # a large record wanted in memory: streamed, collected
                yield partial(self.single_in_memory, record)
            else:
                yield partial(self.to_file, record, path)
        if chunk:
            yield partial(self.in_memory, chunk)

    def expected(self, record: RecordInfo) -> Commitment:
        found = self.registered.get(bytes(record.record_id))
        if found is None:
            raise IntegrityError(f"record 0x{bytes(record.record_id).hex()} has no registration "
                                 f"of {self.client.address} on chain: not read")
        return found

    def opened(self, record: RecordInfo, source: BinaryIO | Iterator[bytes],
               destination: BinaryIO) -> None:
        decrypt_to(source, destination,
                   owner_sk=self.secrets[(bytes(record.scope_id), record.epoch)],
                   expected_commitment=self.expected(record))

    def in_memory(self, chunk: list[RecordInfo]) -> list[Opened]:
        for record in chunk:
            self.expected(record)  # refused before anything is downloaded
        by_id = {bytes(r.record_id): r for r in chunk}
        out: list[Opened] = []
        client = self.client
        for rid, envelope in client.service.own_envelopes(
                patient=client.address, record_ids=[r.record_id for r in chunk]):
            record = by_id[bytes(rid)]
            plain = io.BytesIO()
            self.opened(record, io.BytesIO(envelope), plain)
            out.append(Opened(record, client.label_of(record), content=plain.getvalue()))
        if [bytes(o.record.record_id) for o in out] != list(by_id):
            raise IntegrityError("the service's bulk download did not answer the records asked")
        return out

    def to_file(self, record: RecordInfo, path: Path) -> list[Opened]:
        self.expected(record)
        client = self.client
        try:
            with client.service.open_own_record(patient=client.address,
                                                record_id=record.record_id) as stream, \
                    private_file(path) as handle:
                self.opened(record, stream, handle)
        except BaseException:
            path.unlink(missing_ok=True)  # no unchecked prefix left behind
            raise
        return [Opened(record, client.label_of(record), path=path)]

    def single_in_memory(self, record: RecordInfo) -> list[Opened]:
        self.expected(record)
        plain = io.BytesIO()
        client = self.client
        with client.service.open_own_record(patient=client.address,
                                            record_id=record.record_id) as stream:
            self.opened(record, stream, plain)
        return [Opened(record, client.label_of(record), content=plain.getvalue())]


def pipelined(tasks: Iterable[Callable[[], T]], *, workers: int) -> Iterator[T]:
    """Run ``tasks`` on ``workers`` threads and hand their results on in the tasks' order,
    as they finish: at most ``2 * workers`` are in flight or waiting (memory stays flat for
    any number of tasks); a task's exception is raised here, in order, and what was not
    started yet is cancelled."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kizuna-read") as pool:
        waiting: deque[Future[T]] = deque()
        try:
            for task in tasks:
                waiting.append(pool.submit(task))
                if len(waiting) >= 2 * workers:
                    yield waiting.popleft().result()
            while waiting:
                yield waiting.popleft().result()
        finally:
            for pending in waiting:
                pending.cancel()


def private_file(path: Path, *, field: str = "files_dir") -> BinaryIO:
    """``path`` opened for writing, mode 0600 (it is health data); an ``InputError`` naming
    ``field`` when it cannot be."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise InputError(field, f"cannot write {path}: {exc.strerror}") from None
    return os.fdopen(fd, "wb")


# --- choosing what to export ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """Which records an export takes: scope labels (exact), resource types (the part of a
    label before ``:``), and an added-date range ``[since, until)`` in unix seconds. Empty
    filters take everything."""

    labels: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    since: int | None = None
    until: int | None = None

    def takes(self, record: RecordInfo, label: ScopeLabel | None) -> bool:
        if self.since is not None and record.created_at < self.since:
            return False
        if self.until is not None and record.created_at >= self.until:
            return False
        if self.labels and (label is None or str(label) not in self.labels):
            return False
        return not (self.types and (label is None or str(label).split(":", 1)[0]
                                    not in self.types))


def selected(client: PatientClient,
             selection: Selection) -> list[tuple[RecordInfo, ScopeLabel | None]]:
    """The patient's records the selection takes (ONE listing), oldest first."""
    return [(r, label) for r, label in client.labelled_records() if selection.takes(r, label)]


# --- writing an export ------------------------------------------------------------------------


@dataclass(slots=True)
class ExportResult:
    """What :func:`export` wrote."""

    records: int = 0
    resources: int = 0
    files: int = 0
    files_skipped: int = 0
    by_type: dict[str, int] | None = None

    def as_dict(self) -> dict[str, object]:
        return {"records": self.records, "resources": self.resources, "files": self.files,
                "files_skipped": self.files_skipped, "by_type": dict(self.by_type or {})}


def resources_of(opened: Opened) -> Iterator[bytes]:
    """The canonical JSON of each FHIR resource in a decrypted record (one for a JSON record,
    one per line of an NDJSON record)."""
    assert opened.content is not None
    return resources_in(opened.record.content_type, opened.content)


def resources_in(content_type: str, content: bytes) -> Iterator[bytes]:
    """The FHIR resources of a decrypted record's ``content`` of ``content_type``."""
    if base_type(content_type) == FHIR_NDJSON_TYPE:
        yield from (line for line in content.splitlines() if line.strip())
    else:
        yield content


class FhirWriter:
    """FHIR resources written as NDJSON (one a line) or one ``Bundle`` of type
    ``collection``, streamed: the patient's export and the provider's write the same files."""

    def __init__(self, out: BinaryIO, fmt: Format) -> None:
        if fmt not in ("ndjson", "bundle"):
            raise InputError("format", f"{fmt!r} is not an export format (ndjson or bundle)")
        self._out, self._fmt, self._first = out, fmt, True
        if fmt == "bundle":
            out.write(b'{"resourceType":"Bundle","type":"collection","entry":[')

    def write(self, content_type: str, content: bytes) -> int:
        """The resources of one decrypted record written; how many."""
        count = 0
        for resource in resources_in(content_type, content):
            if self._fmt == "ndjson":
                self._out.write(resource + b"\n")
            else:
                self._out.write((b"" if self._first else b",") + b'{"resource":' + resource
                                + b"}")
            self._first = False
            count += 1
        return count

    def close(self) -> None:
        if self._fmt == "bundle":
            self._out.write(b"]}\n")


def export(client: PatientClient, out: BinaryIO, *, fmt: Format = "bundle",
           selection: Selection | None = None, files_dir: Path | None = None,
           workers: int = DEFAULT_WORKERS,
           on_record: Callable[[int, int], None] | None = None) -> ExportResult:
    """Write the patient's records (or a ``selection``) decrypted to ``out``: FHIR resources as
    NDJSON (one per line) or one FHIR ``Bundle`` of type ``collection``, streamed. File
    records (PDF, images, DICOM) are written into ``files_dir`` as ``<record id>.<ext>``, or
    skipped (counted) when it is ``None``. ``on_record(done, total)`` reports progress."""
    writer = FhirWriter(out, fmt)
    chosen = selected(client, selection or Selection())
    wanted = [r for r, _ in chosen if is_fhir(r) or files_dir is not None]
    result = ExportResult(records=0, files_skipped=len(chosen) - len(wanted), by_type={})
    if files_dir is not None:
        files_dir.mkdir(parents=True, exist_ok=True)

    def destination(record: RecordInfo) -> Path | None:
        return None if is_fhir(record) or files_dir is None else files_dir / file_name(record)

    for opened in read_many(client, wanted, workers=workers, destination=destination):
        result.records += 1
        if opened.path is not None:
            result.files += 1
        else:
            assert opened.content is not None
            result.resources += writer.write(opened.record.content_type, opened.content)
        kind = str(opened.label).split(":", 1)[0] if opened.label is not None else "unknown"
        assert result.by_type is not None
        result.by_type[kind] = result.by_type.get(kind, 0) + 1
        if on_record is not None:
            on_record(result.records, len(wanted))
    writer.close()
    return result


@dataclass(slots=True)
class ProviderExportResult:
    """What :func:`export_as_provider` wrote: records read (each with its own receipt), the
    resources written, file records skipped, and the records the service refused."""

    records: int = 0
    resources: int = 0
    files_skipped: int = 0
    receipts: int = 0
    refused: list[ProviderRead] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"records": self.records, "resources": self.resources,
                "files_skipped": self.files_skipped, "receipts": self.receipts,
                "refused": [{"record_id": "0x" + bytes(r.record.record_id).hex(),
                             "reason": str(r.refused)} for r in self.refused]}


def export_as_provider(client: ProviderClient, patient: str, out: BinaryIO, *,
                       fmt: Format = "bundle", since: int | None = None,
                       until: int | None = None, workers: int = DEFAULT_WORKERS,
                       on_record: Callable[[int, int], None] | None = None
                       ) -> ProviderExportResult:
    """Write what the provider may read of ``patient`` (FHIR records added in ``[since,
    until)``; file records skipped, counted) decrypted to ``out``, streamed, as
    :func:`export` does: each record its own signed read request and receipt
    (:meth:`ProviderClient.read_many`). A record the service refuses (a grant revoked
    meanwhile) is reported in the result, not fatal."""
    writer = FhirWriter(out, fmt)
    readable = [r for r in client.records(patient=patient)
                if (since is None or r.created_at >= since)
                and (until is None or r.created_at < until)]
    wanted = [r for r in readable if is_fhir(r)]
    result = ProviderExportResult(files_skipped=len(readable) - len(wanted))
    for read in client.read_many(patient, wanted, workers=workers, on_progress=on_record):
        if read.refused is not None:
            result.refused.append(read)
            continue
        assert read.content is not None and read.grant is not None
        result.records += 1
        result.receipts += 1
        result.resources += writer.write(read.record.content_type, read.content)
    writer.close()
    return result


__all__ = [
    "DEFAULT_WORKERS",
    "ExportResult",
    "FhirWriter",
    "Format",
    "Opened",
    "ProviderExportResult",
    "Selection",
    "export",
    "export_as_provider",
    "file_name",
    "is_fhir",
    "pipelined",
    "private_file",
    "read_many",
    "resources_in",
    "resources_of",
    "selected",
]
