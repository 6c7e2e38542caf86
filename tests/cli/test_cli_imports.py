"""What a ``kizuna`` process imports: only what its command needs. Every CLI call pays for
its imports in CPU (web3 alone ~0.6 s), so a command that does not touch the chain itself —
the help, a key's address, a listing through the API — must not load web3, the API's server
side (fastapi, sqlalchemy, uvicorn) or siwe. Each command runs in a subprocess through the
real entry point against the role tests' running ``kizuna up --demo``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from roles_stack import Stack

from kizuna.stack.keyring import Keyring

RUN_AND_LIST = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
from kizuna.cli.main import main
try:
    main(args)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(out, "w") as handle:
    # (a name marked absent, None, is not a module that was imported)
    json.dump({"code": code, "modules": sorted(n for n, m in sys.modules.items() if m)}, handle)
"""

SERVER_SIDE = {"web3", "fastapi", "sqlalchemy", "uvicorn", "siwe", "abnf", "starlette"}


def _modules(stack: Stack, tmp_path: Path, *args: str) -> tuple[set[str], str]:
    """The top-level packages ``kizuna ARGS`` had imported when it finished, and its stdout."""
    listing = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", RUN_AND_LIST, str(listing), *args],
                          env=stack.env(), capture_output=True, text=True, timeout=180,
                          check=False)
    result = json.loads(listing.read_text())
    assert result["code"] in (0, None), f"kizuna {' '.join(args)}: {done.stderr}"
    return {name.split(".")[0] for name in result["modules"]}, done.stdout


def test_help_imports_no_command_module(stack: Stack, tmp_path: Path) -> None:
    loaded, out = _modules(stack, tmp_path, "--help")
    assert "patient" in out and "keys" in out  # every command listed, with its summary
    assert not loaded & (SERVER_SIDE | {"eth_account", "httpx", "pydantic_settings", "fhir"})


def test_a_keys_address_reads_the_file_only(stack: Stack, tmp_path: Path) -> None:
    loaded, out = _modules(stack, tmp_path, "keys", "address", "aiko")
    assert out.strip() == Keyring(stack.home / "keys").address("aiko")
    # no unlock, so no eth_account; no settings, so no pydantic-settings
    assert not loaded & (SERVER_SIDE | {"eth_account", "httpx", "pydantic_settings"})


@pytest.mark.parametrize("command", [
    ("provider", "patients", "--key", "dr-tanaka", "--json"),
    ("provider", "records", "--key", "dr-tanaka", "--json"),
    ("patient", "records", "--key", "aiko", "--json"),
], ids=" ".join)
def test_a_command_through_the_api_does_not_load_web3(stack: Stack, tmp_path: Path,
                                                      command: tuple[str, ...]) -> None:
    loaded, out = _modules(stack, tmp_path, *command, "--api", stack.api_url)
    assert json.loads(out)  # the demo's patients and records, listed
    assert "httpx" in loaded  # it did talk to the API
    assert not loaded & SERVER_SIDE
    # nor, printing JSON, a console: not rich, nor pygments (httpx's own CLI would load both)
    assert not loaded & {"rich", "pygments"}
