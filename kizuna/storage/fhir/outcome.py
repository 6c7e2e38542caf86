"""Validation problems as a FHIR ``OperationOutcome``, the way FHIR servers report them.

The FHIR facade answers an invalid resource with an OperationOutcome; this builds it from
``FhirValidationError.issues``: one ``issue`` per ``(path, reason)``, severity ``error``, an
``issue-type`` code chosen from the reason, the reason as ``diagnostics`` and the path as a
FHIRPath ``expression`` (paths that are not FHIRPath — a JSON-level problem, an NDJSON
``file:line:`` prefix — stay in the diagnostics only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from kizuna.storage.fhir.validate import Issue

_FHIRPATH = re.compile(r"[A-Z][A-Za-z]+(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*")

# (substring of the reason, issue-type code), first match wins
_CODES: tuple[tuple[str, str], ...] = (
    ("required element is missing", "required"),
    ("required value set", "code-invalid"),
    ("needs a coding from", "code-invalid"),
    ("does not resolve", "not-found"),
    ("names no", "not-found"),
    ("no entry has version", "not-found"),
    ("also names entry", "duplicate"),
    ("not an element", "structure"),
    ("resource type", "structure"),
    ("JSON", "structure"),
    ("at most 64 characters", "too-long"),
)


def issue_code(reason: str) -> str:
    """The FHIR ``issue-type`` code for a Kizuna reason (``invalid`` if nothing narrower)."""
    for fragment, code in _CODES:
        if fragment in reason:
            return code
    return "value" if "date" in reason or "time" in reason else "invalid"


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    """An R4 ``OperationOutcome`` (JSON object) listing ``issues``."""
    entries = []
    for path, reason in issues:
        entry: dict[str, Any] = {"severity": "error", "code": issue_code(reason)}
        if path and _FHIRPATH.fullmatch(path):
            entry["diagnostics"] = reason
            entry["expression"] = [path]
        else:
            entry["diagnostics"] = f"{path}: {reason}" if path else reason
        entries.append(entry)
    if not entries:
        entries.append({"severity": "information", "code": "informational",
                        "diagnostics": "no problems found"})
    return {"resourceType": "OperationOutcome", "issue": entries}


__all__ = ["issue_code", "operation_outcome"]
