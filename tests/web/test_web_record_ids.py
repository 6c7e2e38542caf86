"""The import record ids (tests/vectors/record_ids.json, written by Python) re-derived by the
page's code (web/src/core/recordIds.ts) in a real Chromium: WebCrypto's HKDF and HMAC as the
browser provides them, from the vector's inputs only (private key, account, domain, the files,
each id's digest and index). A wrong byte fails naming the vector and the id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from browser import Session
from test_web_vectors import bench_url, call, page  # noqa: F401  (the bench's fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.node]

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "record_ids.json"


def test_record_ids_re_derived_in_chromium(page: Session) -> None:  # noqa: F811
    spec: dict[str, Any] = json.loads(VECTORS.read_text("utf-8"))
    assert len(spec["vectors"]) >= 3
    mismatches: list[str] = []
    for vector in spec["vectors"]:
        got = call(page.page, "recordIdVector", {
            "private_key": vector["private_key"], "account": vector["account"],
            "domain": vector["domain"], "files": spec["files"],
            "ids": [{"digest": c["digest"], "index": c["index"]} for c in vector["ids"]]})
        where = f"{vector['label']} on chain {vector['domain']['chainId']}"
        if got["import_id_key"] != vector["import_id_key"]:
            mismatches.append(f"{where}: import id key {got['import_id_key']}")
        for source in ("bundle", "ndjson"):
            expected = next(c["digest"] for c in vector["ids"] if c["source"] == source)
            if got[f"{source}_digest"] != expected:
                mismatches.append(f"{where}: {source} digest {got[f'{source}_digest']}")
        for case, rid in zip(vector["ids"], got["record_ids"], strict=True):
            if rid != case["record_id"]:
                mismatches.append(f"{where}: {case['source']} #{case['index']}: browser {rid} "
                                  f"!= committed {case['record_id']}")
    assert not mismatches, "\n".join(mismatches)
