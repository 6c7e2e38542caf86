"""A study's data as FHIR Bulk Data NDJSON: one file per resource type (``Observation.ndjson``),
one resource per line, as a Bulk Data ``$export`` server writes them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kizuna.errors import InputError


def write_bulk_ndjson(resources: Iterable[Mapping[str, Any]],
                      directory: str | os.PathLike[str]) -> dict[str, int]:
    """Write ``resources`` into ``directory`` (created; files of the same types replaced) and
    return the count written per resource type. Lines are compact JSON, UTF-8, ``\\n``-ended."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    handles: dict[str, Any] = {}
    counts: dict[str, int] = {}
    try:
        for resource in resources:
            kind = resource.get("resourceType")
            if not isinstance(kind, str) or not kind.isalpha():
                raise InputError("resourceType", f"not a resource type: {kind!r}")
            if kind not in handles:
                handles[kind] = (out / f"{kind}.ndjson").open("w", encoding="utf-8")
                counts[kind] = 0
            handles[kind].write(json.dumps(resource, ensure_ascii=False,
                                           separators=(",", ":")) + "\n")
            counts[kind] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return counts
