"""The committed cross-language vectors re-derived by the page's code in a real browser.

web/test/*.test.ts check the same vectors in Node; this runs the browser build of the same
code (web/bench/, built by Vite into a temp folder, served by kizuna/web/static.py under the
app's Content-Security-Policy) in Debian's Chromium, where the page really runs: WebCrypto's
HKDF/HMAC/AES-GCM and umbral-pre's WASM as the browser provides them.

The browser gets only each vector's inputs (private key, account, domain, scope labels, epochs,
typed data) and answers what it derived; the comparison with tests/vectors/*.json is made here,
field by field, so any wrong value fails naming the vector and the field:

* tests/vectors/wallet_keys.json: the KeyDerivation typed data, its digest, the RFC 6979
  signature, the Umbral decrypting and verifying keys, the blinded scope ids and the per-scope
  delegating keys of every epoch (up to 2^40 + 7: epochs travel as decimal strings).
* tests/vectors/eip712.json: every ledger action's digest and signature, and the signer the
  signature recovers to.
* Envelope v1 (no committed vector: each envelope has a random data key and nonce): envelopes
  sealed by kizuna.storage.envelope open in the browser (in memory and streamed), envelopes
  sealed in the browser open in Python, and an altered one is refused with Python's message.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from browser import Session, new_session
from playwright.sync_api import Browser, Page

from kizuna.crypto import pre
from kizuna.crypto.commitment import commitment_of
from kizuna.errors import IntegrityError
from kizuna.storage.envelope import decrypt_bytes, encrypt_bytes
from kizuna.types import RecordId

pytestmark = [pytest.mark.browser, pytest.mark.node]

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
SEGMENT = 64
SIZES = [0, 1, SEGMENT, 3 * SEGMENT + 17, 4 * SEGMENT]
CONTENT_TYPE = "application/fhir+json"


def _benchmark() -> ModuleType:
    """benchmarks/web.py: it builds and serves the page's bench entry (one home for both)."""
    spec = importlib.util.spec_from_file_location("kizuna_web_benchmark",
                                                  ROOT / "benchmarks" / "web.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


BENCH = _benchmark()


def call(page: Page, method: str, *args: Any) -> Any:
    return BENCH.call(page, method, *args, timeout_s=60)


@pytest.fixture(scope="module")
def bench_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    build = BENCH.build_bench(tmp_path_factory.mktemp("web-bench") / "build")
    with BENCH.serve(BENCH.static_app(build), own_process=False) as url:
        yield url


@pytest.fixture
def page(chromium: Browser, bench_url: str, request: pytest.FixtureRequest) -> Iterator[Session]:
    session = new_session(chromium, device="desktop", test=request.node.name)
    try:
        session.page.goto(bench_url + "/")
        session.page.wait_for_selector("#bench[data-ready='true']", state="attached")
        yield session
        session.check()  # no console error, no CSP violation
    finally:
        session.close()


def _load(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((VECTORS / name).read_text("utf-8"))
    return spec


def _compare(where: str, got: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    return [f"{where}: {key}: browser {got.get(key)!r} != committed {value!r}"
            for key, value in expected.items() if got.get(key) != value]


def test_wallet_keys_and_scopes_re_derived_in_chromium(page: Session) -> None:
    spec = _load("wallet_keys.json")
    assert len(spec["vectors"]) >= 3
    mismatches: list[str] = []
    for vector in spec["vectors"]:
        domain = vector["typed_data"]["domain"]
        epochs = sorted(vector["scope_delegating_keys_by_epoch"], key=int)
        assert epochs and all(e.isdigit() for e in epochs)
        got = call(page.page, "walletVector", {
            "private_key": vector["private_key"],
            "account": vector["account"],
            "domain": {"chainId": domain["chainId"],
                       "verifyingContract": domain["verifyingContract"]},
            "labels": list(vector["scope_ids"]),
            "epochs": epochs,
        })
        where = f"{vector['label']} on chain {domain['chainId']}"
        expected = {key: vector[key] for key in (
            "account", "typed_data", "digest", "signature", "umbral_public_key",
            "umbral_verifying_key", "scope_ids", "scope_delegating_keys")}
        for epoch, keys in vector["scope_delegating_keys_by_epoch"].items():
            for label, key in keys.items():  # one line per key: the message names it
                name = f"delegating key of {label} in epoch {epoch}"
                expected[name] = key
                got[name] = got["scope_delegating_keys_by_epoch"].get(epoch, {}).get(label)
        mismatches += _compare(where, got, expected)
    assert not mismatches, "\n".join(mismatches)


def test_ledger_actions_hashed_signed_and_recovered_in_chromium(page: Session) -> None:
    spec = _load("eip712.json")
    assert len(spec["vectors"]) >= 5
    mismatches: list[str] = []
    for vector in spec["vectors"]:
        got = call(page.page, "eip712Vector",
                   {"privateKey": vector["privateKey"], "typedData": vector["typedData"]})
        expected = {"signer": vector["signer"], "digest": vector["digest"],
                    "signature": vector["signature"], "recovered": vector["signer"]}
        mismatches += _compare(vector["name"], got, expected)
    assert not mismatches, "\n".join(mismatches)


def _plaintext(size: int) -> bytes:
    return bytes((i * 31 + 7) % 256 for i in range(size))


def test_envelopes_cross_between_python_and_chromium(page: Session) -> None:
    sk = pre.UmbralSecretKey.random()
    for size, chunk in zip(SIZES, [1, 7, 100, 64, 1000], strict=True):
        record_id = RecordId(os.urandom(32))
        envelope = bytes(encrypt_bytes(_plaintext(size), owner_key=sk.public_key,
                                       record_id=record_id, content_type=CONTENT_TYPE,
                                       segment_size=SEGMENT))
        opened = call(page.page, "openEnvelope", {
            "owner_secret_key": sk.to_secret_bytes().hex(), "envelope": envelope.hex(),
            "chunk": chunk, "commitment": commitment_of(envelope).hex()})
        assert opened.get("error") is None, (size, opened)
        assert opened["plaintext"] == opened["streamed"] == _plaintext(size).hex(), size
        assert (opened["content_type"], opened["record_id"]) == (CONTENT_TYPE, record_id.hex())

        record_id = RecordId(os.urandom(32))
        sealed = call(page.page, "sealEnvelope", {
            "owner_public_key": sk.public_key.hex(),
            "record_id": record_id.hex(), "content_type": CONTENT_TYPE,
            "segment_size": SEGMENT, "plaintext": _plaintext(size).hex()})
        assert decrypt_bytes(bytes.fromhex(sealed["envelope"]), owner_sk=sk) == _plaintext(size)


def test_an_altered_envelope_is_refused_in_chromium_as_in_python(page: Session) -> None:
    sk = pre.UmbralSecretKey.random()
    envelope = bytearray(encrypt_bytes(_plaintext(3 * SEGMENT + 5), owner_key=sk.public_key,
                                       record_id=RecordId(os.urandom(32)),
                                       content_type=CONTENT_TYPE, segment_size=SEGMENT))
    envelope[-3] ^= 1  # the final segment's tag
    with pytest.raises(IntegrityError) as caught:
        decrypt_bytes(bytes(envelope), owner_sk=sk)
    answer = call(page.page, "openEnvelope", {
        "owner_secret_key": sk.to_secret_bytes().hex(), "envelope": bytes(envelope).hex(),
        "chunk": 7, "commitment": commitment_of(bytes(envelope)).hex()})
    assert answer == {"error": "IntegrityError", "message": str(caught.value)}
