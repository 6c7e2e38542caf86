"""What the two schemathesis fuzzers (tests/api/test_api_fuzz.py, tests/adversarial/
test_fuzz_routes.py) share: schemathesis without its length-into-pattern rewrite for long bounds.

The API's hex fields are ``pattern: ^0x([0-9a-fA-F]{2})*$`` with ``maxLength: 1048576``. To
generate, schemathesis folds the length into the pattern (``...{0,524287}$``) and compiles that
regex for the whole body schema several times (a check, the canonical form, a validator it keeps
in a cache): seconds of CPU and hundreds of MB, held to the end, for each operation with such a
field; most of what the fuzzers cost. The fold only steers drawn strings under the bound, and
Hypothesis draws nothing near that long, so above :data:`LONGEST_FOLDED` the pattern and
``maxLength`` stay as the document has them: the same schema with both keywords, and the
answers validated against the document as before (that schema is never folded)."""

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
