"""``kizuna provider fhir-proxy`` through the real entry point (``python -m kizuna.cli``) against
a real ``kizuna up --demo`` (anvil, contracts, embedded store, database, API on free ports):
dr-tanaka's proxy serves exactly what aiko and kenji granted, nothing of a scope aiko revokes
(``kizuna patient revoke``), stops cleanly on Ctrl-C, answers 503 once its API stops; a wrong
passphrase and an API that does not answer are one line and their exit codes."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import forked_cli
import httpx
import pytest

from kizuna.chain.localnode import free_port
from kizuna.stack.home import KizunaHome
from kizuna.stack.instances import ApiInstances
from kizuna.stack.keyring import Keyring
from kizuna.storage.fhir.validate import validate

pytestmark = pytest.mark.anvil

KIZUNA = [sys.executable, "-m", "kizuna.cli"]
PASSPHRASE = "kizuna-demo"
LAB = ("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
VITAL = ("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
README = Path(__file__).resolve().parents[2] / "README.md"


def kizuna(home: Path, *args: str, timeout: float = 180,
           **extra: str) -> subprocess.CompletedProcess[str]:
    code, out, err = forked_cli.run(list(args), env=forked_cli.clean_env(home, **extra),
                                    timeout=timeout)
    return subprocess.CompletedProcess([*KIZUNA, *args], code, out, err)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


class Background:
    """A kizuna command running in the background whose first stdout line is JSON."""

    def __init__(self, home: Path, *args: str, **extra: str) -> None:
        self.err = (home.parent / f"{args[0]}-{free_port()}.err").open("w+")
        self.process = subprocess.Popen([*KIZUNA, *args], env=forked_cli.clean_env(home, **extra),
                                        stdout=subprocess.PIPE, stderr=self.err, text=True)

    def ready(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            self.err.seek(0)
            raise AssertionError(f"exited {self.process.returncode}:\n{self.err.read()}")
        info: dict[str, Any] = json.loads(line)
        return info

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)
            if not self.err.closed:
                self.err.close()


@dataclass(frozen=True)
class Demo:
    """The module's ``kizuna up --demo``: its home, its API's URL and what it printed."""

    home: Path
    api: str
    info: dict[str, Any]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The module's shared demo stack; a test that changes its grants puts them back."""
    home = tmp_path_factory.mktemp("proxy-cli") / "home"
    up = Background(home, "up", "--demo", "--json", "--port", str(free_port()),
                    "--rpc-port", str(free_port()))
    try:
        info = up.ready()
        yield Demo(home=home, api=str(info["api_url"]), info=info)
    finally:
        up.stop()


def address_of(home: Path, name: str) -> str:
    """Key ``name``'s address, read from the home's keystore in this process (what `kizuna
    keys list` prints: test_cli_keys runs it)."""
    return str(Keyring(KizunaHome(home).keys_dir).address(name))


def search(client: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(path, params={"_count": "1000", **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    validate(body)
    assert body["type"] == "searchset" and body["total"] == len(body.get("entry", []))
    return [e["resource"] for e in body.get("entry", [])]


def categories(observation: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c.get("system", ""), c.get("code", ""))
            for cat in observation.get("category", []) for c in cat.get("coding", [])}


def recipe(name: str) -> list[list[str]]:
    """The README's fenced block after ``<!-- recipe: name -->``, one argv per line."""
    found = re.search(rf"<!-- recipe: {re.escape(name)} -->\n```\w*\n(.*?)\n```",
                      README.read_text(encoding="utf-8"), re.S)
    assert found, f"README.md has no recipe {name!r}"
    lines = [shlex.split(line) for line in found.group(1).splitlines() if line.strip()]
    assert all(line[0] == "kizuna" for line in lines)
    return [line[1:] for line in lines]


def test_the_readme_recipe_imports_from_a_fhir_server_once(demo: Demo) -> None:
    """kenji pulls what aiko granted dr-tanaka from dr-tanaka's proxy (the README's hospital
    URL and patient id replaced by the proxy's and aiko's)."""
    home, api = demo.home, demo.api
    aiko = address_of(home, "aiko")
    proxy = Background(home, "provider", "fhir-proxy", "--key", "dr-tanaka", "--api", api,
                       "--port", "0", "--refresh", "0", "--json", KIZUNA_PASSPHRASE=PASSPHRASE)
    try:
        base = str(proxy.ready()["fhir_base"])
        runs = []
        for step in recipe("import-from-fhir"):
            argv = [base if a.startswith("https://fhir.hospital.example") else
                    aiko if a == "8c1f2e" else a for a in step]
            done = kizuna(home, *argv, "--api", api, "--json", KIZUNA_PASSPHRASE=PASSPHRASE,
                          KIZUNA_FHIR_TOKEN="recipe-token-4711")
            assert done.returncode == 0, done.stderr
            assert "recipe-token-4711" not in done.stdout + done.stderr
            runs.append(json.loads(done.stdout))
        first, second = runs
        assert first["everything"] and first["patient_id"] == aiko
        assert first["registered"] == first["imported"] > 1 and len(first["batches"]) == 1
        assert all(label.split(":")[0] in ("Observation", "Condition")
                   for label in first["by_scope"])
        assert {label.split(":")[0] for label in first["by_scope"]} == {"Observation",
                                                                        "Condition"}
        assert second["registered"] == 0
        assert second["already_registered"] == first["imported"]
        down = kizuna(home, "patient", "import", "--from-fhir",
                      f"http://127.0.0.1:{free_port()}", "--key", "kenji", "--api", api,
                      KIZUNA_PASSPHRASE=PASSPHRASE)
        assert down.returncode == 69, down.stderr
        assert "cannot reach the FHIR server" in one_line(down.stderr)
    finally:
        assert proxy.stop() == 0


def test_the_proxy_command_serves_the_grants_and_follows_a_revoke(
        demo: Demo) -> None:
    home, api = demo.home, demo.api
    aiko, kenji = address_of(home, "aiko"), address_of(home, "kenji")
    proxy = Background(home, "provider", "fhir-proxy", "--key", "dr-tanaka", "--api", api,
                       "--port", "0", "--refresh", "0", "--json", KIZUNA_PASSPHRASE=PASSPHRASE)
    try:
        info = proxy.ready()
        base = str(info["fhir_base"])
        assert base.startswith("http://127.0.0.1:")
        assert info["patients"] == 2 and info["resources"] > 0
        with httpx.Client(base_url=base, timeout=60) as client:
            statement = client.get("/metadata").json()
            validate(statement)
            assert statement["resourceType"] == "CapabilityStatement"
            # aiko granted lab results, problem-list conditions and medications
            labs = search(client, "/Observation", patient=aiko)
            assert labs and all(LAB in categories(o) for o in labs)
            assert search(client, "/Condition", patient=aiko)
            assert search(client, "/MedicationRequest", patient=aiko)
            # kenji granted vital signs only
            vitals = search(client, "/Observation", patient=kenji)
            assert vitals and all(VITAL in categories(o) for o in vitals)
            assert search(client, "/Condition", patient=kenji) == []
            assert search(client, "/Observation", patient=aiko, category="vital-signs") == []
            assert {p["id"] for p in search(client, "/Patient")} == {aiko, kenji}

            revoked = kizuna(home, "patient", "revoke", "dr-tanaka", "Observation:laboratory",
                             "--key", "aiko", "--api", api, KIZUNA_PASSPHRASE=PASSPHRASE)
            assert revoked.returncode == 0, revoked.stderr
            try:
                assert search(client, "/Observation", patient=aiko) == []
                gone = client.get(f"/Observation/{labs[0]['id']}")
                assert gone.status_code == 404
                assert search(client, "/Condition", patient=aiko)  # the other scopes stay
                assert {o["id"] for o in search(client, "/Observation", patient=kenji)} == {
                    o["id"] for o in vitals}
            finally:  # the module's demo as the other tests know it: aiko's labs granted
                again = kizuna(home, "patient", "grant", "dr-tanaka", "Observation:laboratory",
                               "--days", "30", "--key", "aiko", "--api", api,
                               KIZUNA_PASSPHRASE=PASSPHRASE)
                assert again.returncode == 0, again.stderr
    finally:
        code = proxy.stop(signal.SIGINT)
    assert code == 0


def test_a_wrong_passphrase_is_one_line_and_exit_4(demo: Demo) -> None:
    home, api = demo.home, demo.api
    done = kizuna(home, "provider", "fhir-proxy", "--key", "dr-tanaka", "--api", api,
                  "--port", "0", KIZUNA_PASSPHRASE="not-the-passphrase")
    assert done.returncode == 4, done.stderr
    assert one_line(done.stderr).startswith("kizuna: error:")


def test_an_unreachable_api_is_one_line_and_exit_69(demo: Demo) -> None:
    home = demo.home
    done = kizuna(home, "provider", "fhir-proxy", "--key", "dr-tanaka",
                  "--api", f"http://127.0.0.1:{free_port()}", "--port", "0",
                  KIZUNA_PASSPHRASE=PASSPHRASE)
    assert done.returncode == 69, done.stderr
    assert "does not answer" in one_line(done.stderr)


def test_a_port_in_use_is_one_line_and_exit_5(demo: Demo) -> None:
    home, api = demo.home, demo.api
    port = int(api.rsplit(":", 1)[1])  # the API's own port
    done = kizuna(home, "provider", "fhir-proxy", "--key", "dr-tanaka", "--api", api,
                  "--port", str(port), KIZUNA_PASSPHRASE=PASSPHRASE)
    assert done.returncode == 5, done.stderr
    assert f"127.0.0.1:{port}" in one_line(done.stderr)


def test_help_reads_like_a_manual() -> None:
    done = subprocess.run([*KIZUNA, "provider", "fhir-proxy", "--help"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Examples:" in done.stdout and "127.0.0.1" in done.stdout
    assert "--port" in done.stdout and "--refresh" in done.stdout


def test_the_proxy_fails_closed_when_the_api_stops(demo: Demo) -> None:
    """The proxy's API is one it stops: a second API instance (`kizuna serve`, as `kizuna up
    --instances 2` starts one) on the module's chain, store and database, on a port and event
    index of its own; the module's `kizuna up` stays up for the other tests."""
    home = KizunaHome(demo.home)
    info = demo.info
    instance = ApiInstances(home, count=1, first_port=free_port(), overrides={
        "rpc_url": info["rpc_url"], "deployment_file": info["deployment_file"],
        "chain_id": info["chain_id"], "database_url": info["database_url"],
        "relayer_gas_per_day": 0})
    (api,) = instance.start()
    try:
        _proxy_fails_closed_when_the_api_stops(demo.home, api, instance)
    finally:
        instance.stop()


def _proxy_fails_closed_when_the_api_stops(home: Path, api: str, server: ApiInstances) -> None:
    aiko = address_of(home, "aiko")
    proxy = Background(home, "provider", "fhir-proxy", "--key", "dr-tanaka", "--api", api,
                       "--port", "0", "--refresh", "0", "--json", KIZUNA_PASSPHRASE=PASSPHRASE)
    try:
        base = str(proxy.ready()["fhir_base"])
        with httpx.Client(base_url=base, timeout=60) as client:
            conditions = search(client, "/Condition", patient=aiko)
            assert conditions
            process = server.instances[0].process
            assert process is not None
            server.stop()
            assert process.returncode == -signal.SIGTERM  # ended by the SIGTERM, not killed
            for path in ("/Condition", f"/Condition/{conditions[0]['id']}", "/Patient"):
                response = client.get(path)
                assert response.status_code == 503, response.text
                outcome = response.json()
                validate(outcome)
                assert outcome["resourceType"] == "OperationOutcome"
                assert "cannot confirm the grants" in outcome["issue"][0]["diagnostics"]
            assert client.get("/metadata").status_code == 200  # the server itself is up
    finally:
        assert proxy.stop() == 0
