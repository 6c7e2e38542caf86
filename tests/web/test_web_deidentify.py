"""The de-identification vectors (tests/vectors/deidentify.json, written by Python from
kizuna/research/deidentify.py) re-derived by the page's code (web/src/research/deidentify.ts)
in a real Chromium: WebCrypto's HKDF for the study key, @noble's HMAC for pseudonyms and UIDs,
the browser's regular expressions (Unicode digits) and calendar arithmetic. The browser gets
the inputs only (secret key, study id, ids, UIDs, resource text, as-of day); each value is
compared here, so a wrong byte fails naming the key or the case. Node checks the same vectors:
web/test/deidentify.test.ts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from browser import Session
from test_web_vectors import bench_url, call, page  # noqa: F401  (the bench's fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.node]

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "deidentify.json"


def test_deidentification_re_derived_in_chromium(page: Session) -> None:  # noqa: F811
    spec: dict[str, Any] = json.loads(VECTORS.read_text("utf-8"))
    cases = spec["cases"] + [{"key": 0, "types": {}, "input": e["input"], "name": e["name"],
                              "field": e["field"]} for e in spec["errors"]]
    got = call(page.page, "deidentifyVector", {
        "as_of": spec["as_of"],
        "keys": [{"secret_key": k["secret_key"], "study_id": k["study_id"],
                  "pseudonyms": list(k["pseudonyms"]), "uids": list(k["uids"])}
                 for k in spec["keys"]],
        "cases": [{"key": c["key"], "types": c["types"], "input": c["input"]} for c in cases]})
    mismatches: list[str] = []
    for i, (key, derived) in enumerate(zip(spec["keys"], got["keys"], strict=True)):
        for field in ("offset_days", "pseudonym_key", "pseudonyms", "uids"):
            if derived[field] != key[field]:
                mismatches.append(f"key {i}: {field}: browser {derived[field]!r}")
    for case, derived in zip(cases, got["cases"], strict=True):
        expected = {"field": case["field"]} if "field" in case else {"output": case["output"]}
        if derived != expected:
            mismatches.append(f"{case['name']}: browser {derived!r} != committed {expected!r}")
    assert len(got["cases"]) >= 15
    assert not mismatches, "\n".join(mismatches)
