"""Import of FHIR NDJSON files (FHIR Bulk Data: one resource per line) with flat memory.

A Bundle is one JSON document and is decoded whole (:mod:`~kizuna.storage.fhir.importer`).
Bulk exports are NDJSON files, often one per resource type, that can be far larger than memory.
:func:`import_ndjson` reads them twice, one line at a time:

1. **validate**: every line is validated on its own (same rules as :func:`validate`), its
   references are noted, and the identity of each resource is remembered (``Type/id``, and
   ``urn:uuid:<id>`` when the id is a UUID — the bulk-data form of a Bundle's fullUrl). Then every
   ``Type/id`` and ``urn:uuid:`` reference must name a resource of the files. All problems are
   reported together, each path prefixed with its file and 1-based line:
   ``Observation.ndjson:12:Observation.status``.
2. **records**: iterating the result reads the files again and yields one
   :class:`~kizuna.storage.fhir.importer.ImportedRecord` per line.

Memory holds the set of resource identities and the references still to check, never the
resources. The files must not change between the two passes; the second pass checks each line's
SHA-256 against the first and stops with an error if one differs.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kizuna.errors import FhirValidationError, InputError
from kizuna.storage.fhir.importer import ImportedRecord, record_for
from kizuna.storage.fhir.jsonio import load_json
from kizuna.storage.fhir.validate import Issue, find_issues

_RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]+)?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

PathLike = str | os.PathLike[str]


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line
    except OSError as exc:
        raise InputError("file", f"cannot read {str(path)!r}: {exc.strerror}") from exc


def _reference_paths(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield f"{path}.reference", item
            else:
                yield from _reference_paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _reference_paths(item, f"{path}[{i}]")


class ImportedNdjson:
    """Validated NDJSON files whose lines become records when iterated (read again)."""

    def __init__(self, files: Sequence[Path], digests: Sequence[bytes], count: int) -> None:
        self._files = tuple(files)
        self._digests = tuple(digests)
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[ImportedRecord]:
        digests = iter(self._digests)
        for path in self._files:
            for number, line in _lines(path):
                if hashlib.sha256(line).digest() != next(digests, None):
                    raise InputError("file", f"{path.name}:{number} changed since it was validated")
                resource, issues = find_issues(line)
                if resource is None:  # only if the file changed; the digest says it did not
                    raise FhirValidationError(issues)
                yield record_for(resource.data)


def import_ndjson(*files: PathLike) -> ImportedNdjson:
    """Validate NDJSON files (every problem of every line, and references across all files),
    then return an iterable of their records. Raises
    :class:`~kizuna.errors.FhirValidationError` listing every problem."""
    paths = [Path(f) for f in files]
    if not paths:
        raise InputError("files", "no NDJSON files given")
    issues: list[Issue] = []
    known: set[str] = set()
    pending: list[tuple[str, str]] = []
    digests: list[bytes] = []
    for path in paths:
        for number, line in _lines(path):
            where = f"{path.name}:{number}:"
            digests.append(hashlib.sha256(line).digest())
            try:
                data = load_json(line)
            except FhirValidationError as exc:  # not JSON at all
                issues.extend((f"{where}{p}", reason) for p, reason in exc.issues)
                continue
            _, found = find_issues(data)
            issues.extend((f"{where}{p}", reason) for p, reason in found)
            # Identities and references count even for an invalid line, so that one bad
            # resource is reported once, not again at everything that points at it.
            resource_type, fhir_id = data.get("resourceType"), data.get("id")
            if isinstance(resource_type, str) and isinstance(fhir_id, str):
                known.add(f"{resource_type}/{fhir_id}")
                if _UUID.fullmatch(fhir_id):
                    known.add(f"urn:uuid:{fhir_id}")
            for ref_path, ref in _reference_paths(data, str(resource_type)):
                pending.append((f"{where}{ref_path}", ref))
    for where, ref in pending:
        relative = _RELATIVE.fullmatch(ref)
        target = f"{relative[1]}/{relative[2]}" if relative else ref
        if (relative or ref.startswith("urn:uuid:")) and target not in known:
            issues.append((where, f"{ref!r} names no resource in these files"))
    if issues:
        raise FhirValidationError(issues)
    return ImportedNdjson(paths, digests, len(digests))


__all__ = ["ImportedNdjson", "import_ndjson"]
