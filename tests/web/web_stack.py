"""The running ``kizuna up --demo`` the browser tests open the page of: anvil, the contracts,
the embedded store, the database and the API serving the web app, on free ports of 127.0.0.1,
in a throw-away KIZUNA_HOME. A module of its own, not conftest.py (every test package has a
``conftest``; ``from conftest import`` would pick whichever was imported first)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))

from cli_harness import Result, UpProcess, clean_env, run
from eth_account import Account
from eth_account.signers.local import LocalAccount

from kizuna.chain.localnode import free_port

PASSPHRASE = "kizuna-demo"


@dataclass
class WebStack:
    """The stack and its addresses."""

    home: Path
    up: UpProcess
    web_url: str
    """The page, ``http://127.0.0.1:<port>/``."""
    api_url: str
    rpc_url: str
    chain_id: int
    deployment_file: Path

    def demo_account(self, name: str) -> LocalAccount:
        """The demo's ``name`` (aiko, kenji, dr-tanaka, ...): its key, from its keystore."""
        keystore = json.loads((self.home / "keys" / f"{name}.json").read_text(encoding="utf-8"))
        account: LocalAccount = Account.from_key(Account.decrypt(keystore, PASSPHRASE))
        return account

    def kizuna(self, *args: str, timeout: float = 180) -> Result:
        """Run ``kizuna`` against this stack (its home, the demo's passphrase)."""
        env = clean_env(self.home, KIZUNA_PASSPHRASE=PASSPHRASE)
        return run(self.home, *args, env=env, timeout=timeout)


def start(base: Path) -> WebStack:
    """Start ``kizuna up --demo`` under ``base`` and wait until it serves; the caller stops
    ``stack.up`` (also when this raises, nothing is left: a failed start is stopped here)."""
    home = base / "home"
    up = UpProcess(home, "--demo", "--port", str(free_port()), "--rpc-port", str(free_port()))
    try:
        info = up.ready(timeout=600)
    except BaseException:
        up.stop()
        raise
    api_url = str(info["api_url"]).rstrip("/")
    return WebStack(home=home, up=up, web_url=str(info.get("web_url") or f"{api_url}/"),
                    api_url=api_url, rpc_url=str(info["rpc_url"]), chain_id=int(info["chain_id"]),
                    deployment_file=Path(info["deployment_file"]))
