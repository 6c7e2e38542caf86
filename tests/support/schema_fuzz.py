"""What the two schemathesis fuzzers (tests/api/test_api_fuzz.py, tests/adversarial/
test_fuzz_routes.py) share: schemathesis without its length-into-pattern rewrite for long bounds.

The API's hex fields are ``pattern: ^0x([0-9a-fA-F]{2})*$`` with ``maxLength: 1048576``. To
generate, schemathesis folds the length into the pattern (``...{0,524287}$``) and compiles that
regex for the whole body schema several times (a check, the canonical form, a validator it keeps
in a cache): 2-7 CPU-s and 400-700 MB for each operation with such a field, about 30 CPU-s and
10 GB of memory (never given back) for the positive run over every operation. The fold only
steers drawn strings under the bound; Hypothesis never draws strings of that length, so above
:data:`LONGEST_FOLDED` the pattern and ``maxLength`` stay as the document has them: the same
schema, each keyword still enforced on what is generated (the bound by the generator's check),
and the answers are validated against the document as before (that schema is never folded)."""

from __future__ import annotations

from typing import Any

import pytest
from schemathesis.specs.openapi import converter

LONGEST_FOLDED = 10_000
"""Length bounds up to this still get folded into the pattern (cheap to compile)."""

_fold = converter.update_pattern_in_schema


def _fold_short_bounds(schema: dict[str, Any]) -> None:
    bounds = [schema.get("minLength"), schema.get("maxLength")]
    if any(isinstance(bound, int) and bound > LONGEST_FOLDED for bound in bounds):
        return
    _fold(schema)


def no_long_length_folds(monkeypatch: pytest.MonkeyPatch) -> None:
    """For the test (``monkeypatch`` undoes it): no length bound above LONGEST_FOLDED folded
    into a pattern. Fails (AttributeError) if schemathesis moves the function it replaces."""
    monkeypatch.setattr(converter, "update_pattern_in_schema", _fold_short_bounds)
