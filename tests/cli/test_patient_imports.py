"""`kizuna patient get` loads only what a participant's command needs (issue 12's ``cli_get_s``).

The real command runs in a fresh interpreter against an API address where nothing listens: it
parses its arguments, unlocks the key, imports the client and makes its first request (the
sign-in), which fails. Everything a read of one's own record loads before the network is loaded
by then; none of it may be the service (``kizuna.services``, its database layer, the API) or
what the service stands on (SQLAlchemy, FastAPI, the event index) — nor web3. The whole
command, run against a real stack, reads the chain over ``ChainReader`` and loads no web3 at all.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from cli_harness import UpProcess, clean_env, run

from kizuna.stack.keyring import Keyring

PASS = "correct horse battery staple"

NOT_ON_THE_CLIENT_PATH = ("sqlalchemy", "fastapi", "web3", "kizuna.services", "kizuna.db",
                          "kizuna.api", "kizuna.chain.index", "kizuna.chain.connection")

PROBE = """
import json, os, sys
from kizuna.cli.main import cli
from kizuna.errors import NodeUnreachable
try:
    cli.main(sys.argv[1:], prog_name="kizuna", standalone_mode=False)
    outcome = "ran"
except NodeUnreachable as exc:
    outcome = "unreachable: " + str(exc)
loaded = sorted({m for m in sys.modules for p in json.loads(os.environ["FORBIDDEN"])
                 if m == p or m.startswith(p + ".")})
print(json.dumps({"outcome": outcome, "loaded": loaded,
                  "client": "kizuna.client.api_service" in sys.modules}))
"""


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: a connection is refused at once
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_patient_get_loads_no_service_database_or_web3_before_the_network(tmp_path: Path
                                                                           ) -> None:
    home = tmp_path / "home"
    env = clean_env(home, KIZUNA_PASSPHRASE=PASS)
    Keyring(home / "keys").create("aiko", PASS, light_kdf=True)  # set-up, in process
    port = _closed_port()
    env["FORBIDDEN"] = json.dumps(NOT_ON_THE_CLIENT_PATH)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "patient", "get", "0x" + "ab" * 32,
         "--key", "aiko", "--api", f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # The command got as far as its first request (the sign-in at the API) with the client
    # imported: the probe measured the real path, not an early failure.
    assert seen["outcome"].startswith("unreachable: ") and str(port) in seen["outcome"], seen
    assert seen["client"], seen
    assert seen["loaded"] == [], seen


WHOLE_GET = """
import json, sys
from kizuna.cli.main import cli
cli.main(sys.argv[1:], prog_name="kizuna", standalone_mode=False)
print(json.dumps(sorted(m for m in sys.modules if m == "web3" or m.startswith("web3."))),
      file=sys.stderr)
"""


def test_whole_patient_get_reads_the_record_without_web3(running_stack: UpProcess,
                                                         tmp_path: Path) -> None:
    """The whole command against a real stack: a record added, then got — its bytes decrypted
    and checked against the chain's commitment over ``ChainReader`` — with no web3 loaded."""
    home = running_stack.home  # shared: a key of this test's own name
    env = clean_env(home, KIZUNA_PASSPHRASE=PASS)
    Keyring(home / "keys").create("get-probe", PASS, light_kdf=True)
    source = tmp_path / "obs.json"
    source.write_text(json.dumps({"resourceType": "Observation", "status": "final",
                                  "code": {"text": "cli_get_s probe"}}))
    added = run(home, "patient", "add", str(source), "--key", "get-probe", "--json", env=env)
    assert added.code == 0, added.err
    record_id = added.json()[0]["record_id"]
    out = tmp_path / "got.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", WHOLE_GET, "patient", "get", record_id,
                           "--key", "get-probe", "-o", str(out)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_bytes()) == json.loads(source.read_bytes())
    assert json.loads(done.stderr.strip().splitlines()[-1]) == [], done.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # Printed, not asserted: the machine is shared, wall time is only indicative.
    print(f"patient get: CPU {cpu:.2f} s, wall {wall:.2f} s, loadavg {os.getloadavg()}")
