"""The public surface of ``kizuna.chain``: its modules, pinned, importable, and light to import."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import kizuna.chain

PINNED = [
    "agents",
    "artifacts",
    "compile",
    "connection",
    "deploy",
    "eip712",
    "index",
    "keystore",
    "liveness",
    "localnode",
    "models",
    "relayer",
    "reverts",
    "rpc",
    "signers",
    "transactions",
]


def test_the_public_surface_is_the_sorted_list_of_its_modules() -> None:
    assert kizuna.chain.__all__ == PINNED
    on_disk = sorted(m.name for m in pkgutil.iter_modules(kizuna.chain.__path__)
                     if not m.name.startswith("_"))
    assert on_disk == PINNED


def test_the_package_re_exports_nothing_and_every_module_imports() -> None:
    # One way to reach a name: from the module that defines it, not a second table here.
    for name in PINNED:
        module = importlib.import_module(f"kizuna.chain.{name}")
        assert getattr(kizuna.chain, name) is module
    public = {n for n in vars(kizuna.chain) if not n.startswith("_")}
    assert public == set(PINNED)


def test_light_modules_do_not_pull_in_web3() -> None:
    code = ("import sys, kizuna.chain.localnode, kizuna.chain.artifacts; "
            "print('web3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
