"""Importing the wire models loads nothing of the service or what it stands on (issue 11).

tests/test_package_graph.py checks kizuna/wire's own import lines; this checks what they pull in
transitively, in a fresh interpreter: a client that needs a ``RecordInfo`` or an ``InboxKey``
must not pay for SQLAlchemy, web3, FastAPI, the services, the database layer or the index.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import kizuna.wire

WIRE = sorted(f"kizuna.wire.{p.stem}" for p in Path(kizuna.wire.__file__).parent.glob("*.py")
              if p.stem != "__init__")
NEVER = ("sqlalchemy", "web3", "fastapi", "starlette", "kizuna.services", "kizuna.db",
         "kizuna.api", "kizuna.chain.index", "kizuna.chain.connection")


def test_every_wire_module_is_seen() -> None:
    assert {"kizuna.wire.records", "kizuna.wire.batches", "kizuna.wire.care",
            "kizuna.wire.reads"} <= set(WIRE)


def test_the_wire_models_load_no_service_database_web3_or_fastapi() -> None:
    code = ("import importlib, json, sys\n"
            f"for name in {WIRE!r}:\n    importlib.import_module(name)\n"
            f"never = {NEVER!r}\n"
            "print(json.dumps(sorted({m for m in sys.modules for p in never\n"
            "                         if m == p or m.startswith(p + '.')})))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert json.loads(done.stdout) == []
