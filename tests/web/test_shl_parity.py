"""SMART Health Links made in the page's code (web/src/sharing/shl.ts: the key made in the
page, the content DEFLATEd with CompressionStream and sealed as a JWE dir/A256GCM with
WebCrypto) are opened by tests/sharing/shl_reader.py, a reader written from the HL7 IG that
shares no code with Kizuna (jwcrypto): the Bundle comes back equal, with and without a
passcode (a wrong one answered 401 with the attempts left), the payload carries the label,
expiry and P flag; the patient's list shows every access; a revoked link answers 404; a
passcode too short is refused in the page before anything is sent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "api"))
sys.path.insert(0, str(ROOT / "tests" / "sharing"))

from apienv import ApiServer, ChainEnv, deploy_env, settings_for  # noqa: E402
from shl_reader import ShlRefused, open_link, payload_of  # noqa: E402

from kizuna.chain.localnode import LocalNode, free_port  # noqa: E402

CLI = ROOT / "web" / "test" / "shl_cli.ts"

pytestmark = [pytest.mark.node, pytest.mark.anvil]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainEnv]:
    with LocalNode(log_path=tmp_path_factory.mktemp("anvil") / "anvil.log") as node:
        yield deploy_env(node, tmp_path_factory.mktemp("deployment"))


@pytest.fixture(scope="module")
def server(env: ChainEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    data = tmp_path_factory.mktemp("api")
    started = ApiServer(settings=settings_for(env, data, port=free_port()),
                        log_path=data / "api.log").start()
    yield started
    started.stop()


def web(server: ApiServer, env: ChainEnv, key: str, ops: list[dict[str, Any]]
        ) -> list[dict[str, Any]]:
    node = shutil.which("node", path=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert node, "no node on PATH: `. scripts/bootstrap.sh` puts Node 24 there"
    request = {"base_url": server.url, "rpc_url": env.node.rpc_url, "private_key": key,
               "ops": ops}
    out = subprocess.run([node, str(CLI)], input=json.dumps(request), capture_output=True,
                         text=True, cwd=ROOT, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    results: list[dict[str, Any]] = json.loads(out.stdout)["results"]
    return results


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in result, result
    return result


def test_a_link_made_in_the_page_opens_in_an_independent_reader(
        env: ChainEnv, server: ApiServer) -> None:
    key = "0x" + os.urandom(32).hex()
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Condition", "id": "c1", "code": {"text": "喘息 asthma"},
                      "subject": {"display": "me"}}}] * 40}  # repetitive: DEFLATE matters
    expires = int(time.time()) + 3600
    made_open, made_locked, too_short = web(server, env, key, [
        {"op": "make", "documents": [bundle], "label": "For Dr. Sato — 佐藤先生",
         "expires_at": expires},
        {"op": "make", "documents": [bundle, {"resourceType": "Patient", "id": "p"}],
         "passcode": "1234", "max_attempts": 3},
        {"op": "make", "documents": [bundle], "passcode": "12"}])
    assert too_short["field"] == "passcode"

    uri = ok(made_open)["uri"]
    payload = payload_of(uri)
    assert payload["url"] == server.url + made_open["link"]["path"]
    assert payload["exp"] == expires and payload["label"] == "For Dr. Sato — 佐藤先生"
    assert payload["v"] == 1 and "flag" not in payload
    opened = open_link(uri, recipient="Dr. Sato's clinic")
    assert opened.contents == [("application/fhir+json", bundle)]

    locked = ok(made_locked)["uri"]
    assert payload_of(locked)["flag"] == "P"
    with pytest.raises(ShlRefused) as refused:
        open_link(locked, recipient="someone", passcode="0000")
    assert refused.value.status == 401 and refused.value.body["remainingAttempts"] == 2
    both = open_link(locked, recipient="family", passcode="1234")
    assert [c for _, c in both.contents] == [bundle, {"resourceType": "Patient", "id": "p"}]

    listed, revoked, after = web(server, env, key, [
        {"op": "list"}, {"op": "revoke", "link_id": made_open["link"]["link_id"]},
        {"op": "list"}])
    by_id = {link["link_id"]: link for link in ok(listed)["value"]}
    first = by_id[made_open["link"]["link_id"]]
    assert {(a["recipient"], a["outcome"]) for a in first["accesses"]} == {
        ("Dr. Sato's clinic", "manifest"), ("Dr. Sato's clinic", "file")}
    second = by_id[made_locked["link"]["link_id"]]
    assert ("someone", "wrong-passcode") in {(a["recipient"], a["outcome"])
                                             for a in second["accesses"]}
    ok(revoked)
    with pytest.raises(ShlRefused) as gone:
        open_link(uri, recipient="late")
    assert gone.value.status == 404
    states = {link["link_id"]: link["state"] for link in ok(after)["value"]}
    assert states[made_open["link"]["link_id"]] != states[made_locked["link"]["link_id"]]
