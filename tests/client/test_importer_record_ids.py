"""The import pipeline's record ids: the committed cross-language vectors are what the code
derives (the page re-derives them: web/test/recordIds.test.ts, tests/web/test_web_vectors.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from kizuna.client.importer import record_id_of
from kizuna.crypto import wallet_keys as wk

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "record_ids.json"


def _load() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(VECTORS.read_text("utf-8"))
    return spec


def test_committed_vectors_are_what_the_code_derives() -> None:
    generator = Path(__file__).with_name("record_id_vectors.py")
    spec = importlib.util.spec_from_file_location("kizuna_record_id_vectors", generator)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert VECTORS.read_text("utf-8") == module.render(), \
        "re-run tests/client/record_id_vectors.py"


@pytest.mark.parametrize("vector", _load()["vectors"], ids=lambda v: v["label"])
def test_vector(vector: dict[str, Any]) -> None:
    domain = wk.KeyDerivationDomain(chain_id=vector["domain"]["chainId"],
                                    verifying_contract=vector["domain"]["verifyingContract"])
    keys = wk.derive_wallet_keys(signature=wk.sign_key_derivation(vector["private_key"],
                                                                  domain=domain),
                                 account=vector["account"], domain=domain)
    key = keys.import_id_key().reveal()
    assert "0x" + key.hex() == vector["import_id_key"]
    files = [bytes.fromhex(f[2:]) for f in _load()["files"]]
    digests = {"bundle": hashlib.sha256(files[0]).digest(),
               "ndjson": hashlib.sha256(b"".join(hashlib.sha256(f).digest()
                                                 for f in files)).digest(),
               "document": hashlib.sha256(bytes.fromhex(_load()["document"][2:])).digest()}
    seen = set()
    for case in vector["ids"]:
        digest = bytes.fromhex(case["digest"][2:])
        if case["source"] in digests:
            assert digest == digests[case["source"]], case["source"]
        rid = bytes(record_id_of(key, digest, case["index"]))
        assert "0x" + rid.hex() == case["record_id"], case
        seen.add(rid)
    assert len(seen) == len(vector["ids"])  # no two positions share an id
