"""How deep JSON may nest before it is decoded: the one home of that rule, for FHIR documents
(:mod:`kizuna.storage.fhir.jsonio`) and API request bodies (:mod:`kizuna.api.limits`) alike.

Python's C JSON decoder recurses on the C stack once per nesting level, guarded only by the
interpreter's recursion limit — which py-evm and py_ecc raise process-wide to 100,000 when
imported (:mod:`kizuna._limits` puts it back). Past a few thousand levels the decoder would then
overflow the C stack and kill the process (a segmentation fault, not an exception), so the depth
is checked on the text first, whatever the limit is. Light on purpose: no heavy imports.
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 1000
"""Deepest JSON nesting decoded (arrays and objects): the decoder's own default bound. FHIR's
element depth is checked far below it by its validator (``validate.MAX_DEPTH``)."""

# A string runs to its closing quote, or to the end of the text when it has none: an
# unterminated string must be consumed once, not retried from every later quote (that made the
# scan quadratic: 40 KB of escaped quotes took 6 s; 1 MB now takes under 0.1 s).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def nesting_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``text`` nests arrays/objects deeper than ``limit`` (strings are skipped).

    Linear in the text, and never below the depth the decoder would reach: a quote opens a
    string wherever the decoder could accept one, and any other quote stops the decoder first.
    """
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


__all__ = ["MAX_JSON_DEPTH", "nesting_exceeds"]
