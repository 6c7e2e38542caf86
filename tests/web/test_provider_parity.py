"""The web ProviderClient (web/src/provider) against a real ``kizuna up --demo``, byte for byte
with the Python provider.

``web/test/provider_cli.ts`` (Node 24 runs it directly) is the page's provider, dr-tanaka: it
signs in with SIWE, derives its keys from its wallet signature, lists its patients from the
chain, and reads every record of aiko's it may read — each its own signed ReadRequest — then
decrypts in Node with its wallet-derived key. The Python provider (``kizuna provider``'s
ProviderClient, the same demo key, in this process: the CLI around it is tested in tests/cli)
lists the same patients and records and reads the same records: identical plaintext. A record of
aiko's in a scope never granted to dr-tanaka is refused with the chain's explanation, not a bare
403.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from web_stack import WebStack

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "web" / "test" / "provider_cli.ts"

pytestmark = [pytest.mark.node, pytest.mark.anvil]


def _node(stack: WebStack, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is not on PATH (. scripts/bootstrap.sh)"
    request = {"base_url": stack.api_url, "rpc_url": stack.rpc_url,
               "private_key": "0x" + bytes(stack.demo_account(name).key).hex(), "ops": ops}
    done = subprocess.run([node, str(CLI)], input=json.dumps(request), capture_output=True,
                          text=True, timeout=300, cwd=ROOT / "web", check=False)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def _cli_json(stack: WebStack, *args: str) -> Any:
    done = stack.kizuna(*args, "--json")
    assert done.code == 0, f"kizuna {' '.join(args)} exited {done.code}: {done.err}"
    return done.json()


def test_the_web_provider_reads_what_the_python_provider_reads(stack: WebStack) -> None:
    aiko = stack.demo_account("aiko").address
    tanaka = stack.demo_account("dr-tanaka").address
    # A record of aiko's in a scope she never granted dr-tanaka (her own list, her keys).
    own = _cli_json(stack, "patient", "records", "--key", "aiko")
    with stack.provider("dr-tanaka") as python_provider:
        granted_ids = {"0x" + bytes(r.record_id).hex()
                       for r in python_provider.records(patient=aiko)}
        assert granted_ids, "dr-tanaka may read nothing of aiko's in the demo"
        answer = _node(stack, "dr-tanaka", [{"op": "patients"},
                                            {"op": "readAll", "patient": aiko}])
        patients, read_all = answer["results"]
        assert answer["address"] == tanaka

        # Who granted what: the chain's grants, as the Python provider's patients with a live
        # grant.
        live = {p["patient"] for p in patients["value"] if p["live"] > 0}
        assert live == set(python_provider.patients())
        granted_scopes = {g["scope_id"] for p in patients["value"] if p["patient"] == aiko
                          for g in p["grants"] if g["state"] == "live"}
        assert granted_scopes and all(g["expires_at"] > 0 for p in patients["value"]
                                      for g in p["grants"])

        # Every readable record, read in TS and in Python: identical plaintext.
        assert read_all["failures"] == []
        assert set(read_all["contents"]) == granted_ids
        for record_id, content in read_all["contents"].items():
            read = python_provider.read(patient=aiko, record_id=bytes.fromhex(record_id[2:]))
            assert bytes.fromhex(content) == read, f"record {record_id} differs"
    assert sorted(read_all["progress"]) == list(range(len(granted_ids)))

    # One wallet signature per read: each read its own ReadRequest (and receipt).
    read_requests = [a for a in answer["asked"] if a.get("primaryType") == "ReadRequest"]
    assert len(read_requests) == len(granted_ids)
    assert all(a["purpose"]["why"] for a in read_requests)

    # Never granted: refused, and the page says which scope and why (from the chain).
    others = [r for r in own if r["scope_id"] not in granted_scopes]
    assert others, "every scope of aiko's is granted to dr-tanaka: no refusal to check"
    other = others[0]
    refused = _node(stack, "dr-tanaka", [{"op": "read", "patient": aiko,
                                          "record_id": other["record_id"],
                                          "scope_id": other["scope_id"]}])["results"][0]
    assert refused["error"] == "ReadRefused", refused
    assert refused["service_kind"] == "NoGrant", refused  # what the service said (its 403)
    assert refused["state"] == "never"
    assert "never granted" in refused["message"]
    scope = other["scope_id"]
    assert scope[:6] in refused["message"] and scope[-4:] in refused["message"]
