"""The compiled contracts shipped with Kizuna (``kizuna/chain/artifacts/*.json``).

Loading them needs neither Node nor a compiler: a user who points Kizuna at an existing
deployment only needs these files. They are produced by ``python -m kizuna.chain.compile --write``
and a test fails when they differ from a fresh compile of ``contracts/``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from kizuna.errors import NotFoundError

ContractName = Literal["ConsentLedger", "ProviderRegistry", "AccessLog", "StudyRegistry",
                       "ProxyRegistry"]
CONTRACT_NAMES: tuple[ContractName, ...] = (
    "ProviderRegistry", "ConsentLedger", "AccessLog", "StudyRegistry")
"""Every deployable Kizuna contract, in deployment order."""

ARTIFACT_NAMES: tuple[ContractName, ...] = (*CONTRACT_NAMES, "ProxyRegistry")
"""Every contract with a committed artifact: the deployment above, plus the proxy-node registry
(docs/proxies.md), which is deployed on its own (kizuna.chain.agents.proxies) and so stays out
of the deployment file and its ABI hash."""


@dataclass(frozen=True)
class Artifact:
    """ABI and bytecode of one contract, plus the hash of the sources and settings it came from."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str
    deployed_bytecode: str
    source_hash: str
    compiler: str

    @property
    def abi_list(self) -> list[dict[str, Any]]:
        """The ABI as the list web3.py expects."""
        return list(self.abi)

    @property
    def abi_hash(self) -> str:
        """``0x`` + sha256 of the canonical ABI JSON: names the interface a deployment speaks."""
        return abi_hash(self.abi_list)


def abi_hash(abi: list[dict[str, Any]]) -> str:
    """sha256 of an ABI in canonical JSON (sorted keys, no whitespace), ``0x``-prefixed."""
    canonical = json.dumps(abi, sort_keys=True, separators=(",", ":"))
    return "0x" + hashlib.sha256(canonical.encode()).hexdigest()


@cache
def load_artifact(name: str) -> Artifact:
    """The committed artifact of contract ``name``; ``NotFoundError`` for an unknown name."""
    if name not in ARTIFACT_NAMES:
        raise NotFoundError(
            f"no Kizuna contract named {name!r} (known: {', '.join(ARTIFACT_NAMES)})"
        )
    path = resources.files("kizuna.chain").joinpath("artifacts", f"{name}.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"artifact {name}.json missing: run python -m kizuna.chain.compile --write"
        ) from exc
    return Artifact(
        name=data["contractName"],
        abi=tuple(data["abi"]),
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        source_hash=data["sourceHash"],
        compiler=data["compiler"]["version"],
    )


def all_artifacts() -> dict[str, Artifact]:
    """Every committed artifact, by contract name."""
    return {name: load_artifact(name) for name in ARTIFACT_NAMES}


def deployment_abi_hash() -> str:
    """One hash over the three ABIs (in deployment order): what a deployment file records."""
    combined = [{"contract": n, "abi": load_artifact(n).abi_list} for n in CONTRACT_NAMES]
    canonical = json.dumps(combined, sort_keys=True, separators=(",", ":"))
    return "0x" + hashlib.sha256(canonical.encode()).hexdigest()


__all__ = [
    "ARTIFACT_NAMES",
    "CONTRACT_NAMES",
    "Artifact",
    "ContractName",
    "abi_hash",
    "all_artifacts",
    "deployment_abi_hash",
    "load_artifact",
]
