"""What ``kizuna up`` imports before it knows what it starts: not the in-process API's server
(uvicorn: only a one-instance stack serves the API itself; ``--instances N`` runs ``kizuna
serve`` processes) and not the FHIR models (only a demo being made validates its histories)."""

from __future__ import annotations

import json
import subprocess
import sys

LIST_MODULES = """
import json, sys
import kizuna.cli.up, kizuna.stack.local, kizuna.stack.demo, kizuna.stack.instances
import kizuna.stack.proxies
print(json.dumps(sorted(sys.modules)))
"""


def test_up_loads_neither_the_api_server_nor_the_fhir_models_until_it_needs_them() -> None:
    done = subprocess.run([sys.executable, "-c", LIST_MODULES], capture_output=True, text=True,
                          timeout=120, check=True)
    loaded = set(json.loads(done.stdout))
    assert "web3" in loaded  # it did import the stack (chain, deployment)
    tops = {name.split(".")[0] for name in loaded}
    assert not tops & {"uvicorn", "fastapi", "starlette", "fhir", "fhir_core"}
    assert not {name for name in loaded if name.startswith(("kizuna.api", "kizuna.storage.fhir"))}
