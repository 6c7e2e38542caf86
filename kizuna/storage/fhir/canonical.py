"""Canonical JSON for FHIR resources: the same resource always gives the same bytes.

A record's commitment on-chain is a hash of its ciphertext, and the ciphertext is of these bytes;
two devices importing the same resource must produce the same plaintext. The rules (close to
RFC 8785, JCS, with one deliberate difference for numbers; docs/fhir.md explains):

* UTF-8, no byte-order mark, no whitespace between tokens, no trailing newline;
* object members sorted by key, comparing keys as UTF-16 code units (as RFC 8785 does; FHIR keys
  are ASCII, where this is plain byte order);
* strings: only ``"``, ``\\`` and control characters below U+0020 are escaped — as ``\\b \\t \\n
  \\f \\r`` where such a short form exists, otherwise ``\\u00xx`` in lower-case hex; every other
  character is written as itself. Lone surrogates are refused;
* ``true``, ``false``, ``null`` as themselves; integers in plain decimal digits;
* decimals keep their written precision (``1.50`` stays ``1.50`` — in FHIR the precision of a
  decimal is part of its value; RFC 8785 would print ``1.5``), in plain notation (exponents
  expanded: ``1.0e2`` → ``100``, ``1E-7`` → ``0.0000001``), negative zero as ``0`` /
  ``0.0``. Floats (from a caller's ``dict``) are first written at their shortest round-trip
  form, then treated the same way.

Arrays keep their order (it carries meaning in FHIR).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from kizuna.errors import InputError
from kizuna.storage.fhir.jsonio import MAX_JSON_DEPTH, FhirJson, load_json

CONTENT_TYPE = "application/fhir+json"
"""The media type of canonical FHIR records."""

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                  "\f": "\\f", "\r": "\\r"}


_PLAIN = re.compile('[\x00-\x1f"\\\\\ud800-\udfff]')
"""A character :func:`_string` must escape or refuse: a string without one is written as it
is (most strings: the per-character loop was the import's largest cost after encryption)."""


def _string(text: str) -> str:
    if _PLAIN.search(text) is None:
        return f'"{text}"'
    out = ['"']
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        elif "\ud800" <= char <= "\udfff":
            raise InputError("", f"lone surrogate U+{ord(char):04X} cannot be encoded as UTF-8")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise InputError("", f"{value} is not a JSON number")
    if value.is_zero() and value.is_signed():
        value = value.copy_abs()
    return format(value, "f")


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise InputError("", f"{value} is not a JSON number")
    return _decimal(Decimal(repr(value)))


def _scalar(value: Any) -> str | None:
    """The canonical text of a JSON scalar; ``None`` when ``value`` is not one."""
    if isinstance(value, str):
        return _string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, float):
        return _number(value)
    return None


def _write(value: Any, out: list[str], depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        # An explicit bound, not RecursionError: libraries (py-evm, py_ecc) raise the
        # interpreter's recursion limit process-wide, which would let this run unbounded.
        raise InputError("", "JSON nested too deeply")
    scalar = _scalar(value)
    if scalar is not None:
        out.append(scalar)
    elif isinstance(value, Mapping):
        _write_object(value, out, depth)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, depth + 1)
        out.append("]")
    else:
        raise InputError("", f"{type(value).__name__} is not a JSON value")


def _write_object(value: Mapping[Any, Any], out: list[str], depth: int) -> None:
    out.append("{")
    keys = sorted(value, key=_utf16_key)
    for i, key in enumerate(keys):
        if not isinstance(key, str):
            raise InputError("", f"JSON object keys must be strings, got {key!r}")
        if i:
            out.append(",")
        out.append(_string(key))
        out.append(":")
        _write(value[key], out, depth + 1)
    out.append("}")


def _utf16_key(key: Any) -> bytes:
    return str(key).encode("utf-16-be", "surrogatepass")


def canonical_json(data: FhirJson) -> bytes:
    """The canonical bytes of a JSON object (a FHIR resource): bytes, text or a mapping.

    This does not validate FHIR; :func:`kizuna.storage.fhir.validate.validate` does.
    """
    obj = load_json(data) if not isinstance(data, Mapping) else data
    out: list[str] = []
    try:
        _write(obj, out)
    except RecursionError:
        raise InputError("", "JSON nested too deeply") from None
    return "".join(out).encode("utf-8")


def loads_canonical(data: bytes) -> dict[str, Any]:
    """Decode canonical bytes back (decimals as :class:`~decimal.Decimal`, as written)."""
    return load_json(data)


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` is already in canonical form."""
    try:
        return canonical_json(data) == data
    except InputError:
        return False


__all__ = ["CONTENT_TYPE", "canonical_json", "is_canonical", "loads_canonical"]
