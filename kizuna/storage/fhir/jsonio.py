"""Reading FHIR JSON: bytes, text or an already decoded mapping, into plain Python values.

Numbers that are not integers are read as :class:`decimal.Decimal`, not ``float``: in FHIR the
precision of a decimal is part of its value (``1.50`` is not ``1.5``), and the canonical form
(:mod:`kizuna.storage.fhir.canonical`) must reproduce it. Duplicate keys, ``NaN``/``Infinity``
and bytes that are not UTF-8 are refused: each would let two parties read one document
differently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kizuna.errors import FhirValidationError

FhirJson = bytes | bytearray | memoryview | str | Mapping[str, Any]
"""What the FHIR functions accept: JSON bytes (UTF-8), JSON text, or a decoded JSON object."""


MAX_JSON_DEPTH = 1000
"""Deepest JSON nesting decoded (arrays and objects). Python's C JSON decoder guards its recursion
with the interpreter's recursion limit, and py-evm and py_ecc raise that limit process-wide to
100,000 when they are imported: past a few thousand levels the decoder would then overflow the
C stack and kill the process (a segmentation fault, not an exception). So the depth is checked
before decoding, whatever the limit is. 1000 is the decoder's own default bound; FHIR's element
depth is checked far below it by the validator (``validate.MAX_DEPTH``)."""

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _nesting_exceeds(text: str, limit: int) -> bool:
    """True when ``text`` nests arrays/objects deeper than ``limit`` (strings are skipped)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number FHIR allows")


def load_json(data: FhirJson) -> dict[str, Any]:
    """Decode ``data`` into a JSON object (``dict``); a mapping is copied as it is.

    Raises :class:`FhirValidationError` with path ``""`` when the input is not one JSON object.
    """
    if isinstance(data, Mapping):
        return dict(data)
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
            raise FhirValidationError([("", reason)]) from None
        if text.startswith("\ufeff"):
            text = text[1:]
    else:
        text = data
    if _nesting_exceeds(text, MAX_JSON_DEPTH):
        raise FhirValidationError([("", "JSON nested too deeply")])
    try:
        value = json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_no_constants,
            object_pairs_hook=_no_duplicates,
        )
    except _DuplicateKey as exc:
        raise FhirValidationError([("", f"duplicate JSON key {exc.args[0]!r}")]) from None
    except ValueError as exc:
        raise FhirValidationError([("", f"not valid JSON: {exc}")]) from None
    except RecursionError:
        raise FhirValidationError([("", "JSON nested too deeply")]) from None
    if not isinstance(value, dict):
        raise FhirValidationError([("", f"expected a JSON object, got {type(value).__name__}")])
    return value


__all__ = ["MAX_JSON_DEPTH", "FhirJson", "load_json"]
