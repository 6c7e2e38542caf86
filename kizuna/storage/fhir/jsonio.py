"""Reading FHIR JSON: bytes, text or an already decoded mapping, into plain Python values.

Numbers that are not integers are read as :class:`decimal.Decimal`, not ``float``: in FHIR the
precision of a decimal is part of its value (``1.50`` is not ``1.5``), and the canonical form
(:mod:`kizuna.storage.fhir.canonical`) must reproduce it. Duplicate keys, ``NaN``/``Infinity``
and bytes that are not UTF-8 are refused: each would let two parties read one document
differently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kizuna.errors import FhirValidationError
from kizuna.jsondepth import MAX_JSON_DEPTH, nesting_exceeds

FhirJson = bytes | bytearray | memoryview | str | Mapping[str, Any]
"""What the FHIR functions accept: JSON bytes (UTF-8), JSON text, or a decoded JSON object."""


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
    # Depth first (kizuna.jsondepth): deep enough nesting would crash the decoder, not raise.
    if nesting_exceeds(text, MAX_JSON_DEPTH):
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
