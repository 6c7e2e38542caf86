"""The running ``kizuna up --demo`` of the role-command tests and a way to run ``kizuna``
against it. A module of its own, not conftest.py: every test package has a ``conftest``, so
``from conftest import ...`` would pick whichever package's conftest was imported first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cli_harness import Result, UpProcess, clean_env, run

from kizuna.stack.keyring import Keyring

PASSPHRASE = "kizuna-demo"


@dataclass
class Stack:
    """The running stack and a way to run ``kizuna`` against it."""

    home: Path
    up: UpProcess
    api_url: str
    rpc_url: str
    deployment_file: Path

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(self.home, **{"KIZUNA_PASSPHRASE": PASSPHRASE, **extra})

    def kizuna(self, *args: str, env: dict[str, str] | None = None,
               timeout: float = 180) -> Result:
        return run(self.home, *args, env=env or self.env(), timeout=timeout)

    @property
    def keyring(self) -> Keyring:
        """The home's keys, in process: for set-up (a test's own key, an address to compare
        with); `kizuna keys ...` itself is tested through the entry point in test_cli_keys."""
        return Keyring(self.home / "keys")

    def address(self, name: str) -> str:
        """Key ``name``'s address, read from its keystore (what `kizuna keys address` prints)
        without a ``kizuna`` process (~1 CPU-s each)."""
        return str(self.keyring.address(name))

    def ok(self, *args: str) -> Result:
        """Run and require exit 0 (the output shown if not)."""
        result = self.kizuna(*args)
        assert result.code == 0, f"kizuna {' '.join(args)} exited {result.code}:\n{result.err}"
        return result
