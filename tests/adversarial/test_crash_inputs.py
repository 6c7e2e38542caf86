"""Issue #15, finding 1: one anonymous request must not kill the service.

``POST /auth/login`` with 99,000 nested ``[`` (198 KB) made the real API (uvicorn, a subprocess)
die with a segmentation fault: py_ecc / py-evm raise the recursion limit to 100,000 at import,
and the C JSON decoder then recursed until the C stack overflowed. Now the limit is put back
(kizuna._limits) and every JSON body's depth is checked before it is parsed
(kizuna.api.limits): a clear 422 naming the body, and the process goes on serving.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from apienv import ApiServer, sign_in
from participants import People

from kizuna.chain.signers import LocalKeySigner

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): each test its own
wallets; a test that killed the API is reported and the API started again."""

DEEP = 99_000


def nested_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def assert_alive(server: ApiServer, http: httpx.Client) -> None:
    assert server.process is not None and server.process.poll() is None, (
        f"the API died (exit {server.process.poll() if server.process else None}): "
        f"{server.log_path.read_text()[-2000:]}")
    assert http.get("/health").status_code == 200


def assert_too_deep(answer: httpx.Response) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["kind"] == "InputError" and error["field"] == "body", error
    assert "nested deeper" in error["reason"], error


def test_nested_array_login_is_refused_and_the_service_survives(
        api_server: ApiServer, http: httpx.Client) -> None:
    body = nested_array(DEEP)
    assert len(body) == 198_000
    answer = http.post("/auth/login", content=body,
                       headers={"Content-Type": "application/json"})
    assert_too_deep(answer)
    assert_alive(api_server, http)
    # and it still signs people in
    assert sign_in(http, LocalKeySigner.generate())["token"]


@pytest.mark.parametrize("path", ["/provider/reads", "/patient/grants", "/wallet/relay",
                                  "/patient/scope-keys", "/auditor/reviews"])
def test_nested_json_on_other_routes_signed_in(api_server: ApiServer, http: httpx.Client,
                                               people: People, path: str) -> None:
    """Signed in or not, no route parses a deep body: objects, arrays, no content type."""
    deep_object = b'{"a":' * DEEP + b"1" + b"}" * DEEP
    for body, headers in ((deep_object, {"Content-Type": "application/json"}),
                          (nested_array(DEEP), {}),
                          (nested_array(5_000), {"Content-Type": "application/json"})):
        answer = http.post(path, content=body, headers={**people.provider.auth, **headers})
        assert_too_deep(answer)
    assert_alive(api_server, http)


def test_depth_is_read_as_the_decoder_reads_it(api_server: ApiServer,
                                               http: httpx.Client) -> None:
    """Encodings the decoder detects (UTF-16 here) and brackets hidden from a naive scan
    behind an escaped quote do not get deep JSON past the check."""
    utf16 = ("[" * DEEP + "]" * DEEP).encode("utf-16-le")
    assert_too_deep(http.post("/auth/login", content=utf16))
    tricky = ('["\\"",' + "[" * DEEP + "]" * DEEP + "]").encode()
    assert_too_deep(http.post("/auth/login", content=tricky,
                              headers={"Content-Type": "application/json"}))
    # a string full of brackets is no nesting: an ordinary validation answer
    flat = b'{"message": "' + b"[" * 50_000 + b'", "signature": "0x00"}'
    answer = http.post("/auth/login", content=flat, headers={"Content-Type": "application/json"})
    assert answer.status_code in (401, 422) and "nested" not in answer.text, answer.text
    assert_alive(api_server, http)


def test_the_recursion_limit_is_safe_after_importing_kizuna() -> None:
    """Importing the API (which imports web3, eth-account and eth-tester's py-evm / py_ecc)
    leaves Python's default recursion limit, so the decoder raises instead of crashing."""
    code = ("import sys, json, kizuna.api.app, kizuna.cli.main\n"
            "import eth, py_ecc\n"
            "assert sys.getrecursionlimit() <= 1000, sys.getrecursionlimit()\n"
            "try:\n"
            "    json.loads('[' * 200000 + ']' * 200000)\n"
            "except RecursionError:\n"
            "    print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode,
                                                                    done.stderr[-2000:])


@pytest.mark.parametrize("order", ["kizuna first", "raisers first"])
def test_the_limit_is_put_back_whenever_the_raisers_are_imported(order: str) -> None:
    """``import kizuna`` does not import py-evm (half a second every CLI call): the limit is
    put back when eth / py_ecc are imported later, by anything, or at once if they came
    first; the packages still load their resources through the wrapped loader."""
    first, then = ("import kizuna", "import eth, py_ecc") if order == "kizuna first" \
        else ("import eth, py_ecc", "import kizuna")
    code = ("import sys\n"
            f"{first}\n"
            "lazy = 'eth' not in sys.modules\n"
            f"{then}\n"
            "import importlib.resources, eth\n"
            "assert importlib.resources.files('eth').is_dir()\n"
            "print(sys.getrecursionlimit(), lazy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    limit, lazy = done.stdout.split()
    assert int(limit) <= 1000
    assert lazy == ("True" if order == "kizuna first" else "False")
