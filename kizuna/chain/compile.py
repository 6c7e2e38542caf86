"""Compile Kizuna's contracts with npm's solc through py-solc-x and the project's ``scripts/solc``
wrapper, and (re)write the committed artifacts in ``kizuna/chain/artifacts/``.

The compiler is never downloaded: ``scripts/solc`` runs the wasm build of solc from
``node_modules``. One settings dictionary (``SETTINGS``) is the single source of truth for the
optimizer and the EVM version; Hardhat (``hardhat.config.js``) and forge (``foundry.toml``) use the
same values. Metadata hashes are left out of the bytecode, so the bytecode depends only on the
sources and the settings, not on where the project sits on disk.

Run ``python -m kizuna.chain.compile --write`` after editing a contract;
``python -m kizuna.chain.compile --check`` exits 1 when the committed artifacts are stale.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from kizuna.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
SOLC_WRAPPER = PROJECT_ROOT / "scripts" / "solc"

CONTRACTS: dict[str, str] = {
    "ConsentLedger": "contracts/ConsentLedger.sol",
    "ProviderRegistry": "contracts/ProviderRegistry.sol",
    "AccessLog": "contracts/AccessLog.sol",
    "StudyRegistry": "contracts/StudyRegistry.sol",
    "ProxyRegistry": "contracts/ProxyRegistry.sol",
}
"""Deployable contracts: name → source unit (relative to the project root)."""

SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 10_000},
    "metadata": {"bytecodeHash": "none", "appendCBOR": False},
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"], "": []}
    },
}


class CompileError(ConfigError):
    """The contracts did not compile, or the compiler could not be run."""


@dataclass(frozen=True)
class CompiledContract:
    """One contract's artifact, as committed in ``kizuna/chain/artifacts/<name>.json``."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler: str
    source_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "contractName": self.name,
            "sourceName": self.source,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
            "compiler": {"version": self.compiler, "settings": _artifact_settings()},
            "sourceHash": self.source_hash,
        }


def _artifact_settings() -> dict[str, Any]:
    return {k: v for k, v in SETTINGS.items() if k != "outputSelection"}


def compiler_version() -> str:
    """The wrapped npm solc's version, e.g. ``0.8.30+commit.73712a01.Emscripten.clang``."""
    out = subprocess.run(
        [str(SOLC_WRAPPER), "--version"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise CompileError(f"{SOLC_WRAPPER} --version failed: {out.stderr.strip()}")
    return out.stdout.strip().splitlines()[-1].removeprefix("Version: ").strip()


def _standard_input() -> dict[str, Any]:
    sources = {
        source: {"content": (PROJECT_ROOT / source).read_text(encoding="utf-8")}
        for source in CONTRACTS.values()
    }
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def source_hash(source_contents: dict[str, str], version: str) -> str:
    """sha256 over every source unit (name and content, sorted), the settings and the compiler."""
    digest = hashlib.sha256()
    digest.update(version.encode())
    digest.update(json.dumps(_artifact_settings(), sort_keys=True).encode())
    for name in sorted(source_contents):
        digest.update(b"\0" + name.encode() + b"\0" + source_contents[name].encode())
    return "0x" + digest.hexdigest()


def _resolve_source(name: str) -> Path:
    for root in (PROJECT_ROOT, PROJECT_ROOT / "node_modules"):
        if (root / name).is_file():
            return root / name
    raise CompileError(f"source {name} used by the compiler not found on disk")


def compile_contracts() -> dict[str, CompiledContract]:
    """Compile every contract of ``CONTRACTS`` fresh; the result does not touch the disk."""
    if not SOLC_WRAPPER.exists():
        raise CompileError(f"compiler wrapper {SOLC_WRAPPER} missing")
    try:
        output = solcx.compile_standard(
            _standard_input(),
            solc_binary=SOLC_WRAPPER,
            base_path=PROJECT_ROOT,
            allow_paths=[PROJECT_ROOT, PROJECT_ROOT / "node_modules"],
        )
    except SolcError as exc:
        raise CompileError(f"solc failed:\n{exc.message}") from exc
    except OSError as exc:  # the wrapper could not be started (no Node, ...)
        raise CompileError(f"cannot run {SOLC_WRAPPER}: {exc}") from exc
    version = compiler_version()
    # Every source unit the compiler read (ours and OpenZeppelin's) goes into the hash.
    used = {name: _resolve_source(name).read_text(encoding="utf-8") for name in output["sources"]}
    digest = source_hash(used, version)
    compiled: dict[str, CompiledContract] = {}
    for name, source in CONTRACTS.items():
        unit = output["contracts"][source][name]
        compiled[name] = CompiledContract(
            name=name,
            source=source,
            abi=unit["abi"],
            bytecode="0x" + unit["evm"]["bytecode"]["object"],
            deployed_bytecode="0x" + unit["evm"]["deployedBytecode"]["object"],
            compiler=version,
            source_hash=digest,
        )
    return compiled


def render(contract: CompiledContract) -> str:
    """The exact text committed for one artifact (stable key order, trailing newline)."""
    return json.dumps(contract.to_json(), indent=1, sort_keys=True) + "\n"


def write_artifacts(
    directory: Path = ARTIFACTS_DIR, compiled: dict[str, CompiledContract] | None = None
) -> list[Path]:
    """Write one ``<Name>.json`` per contract into ``directory`` (compiling unless given)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for contract in (compiled or compile_contracts()).values():
        path = directory / f"{contract.name}.json"
        path.write_text(render(contract), encoding="utf-8")
        written.append(path)
    return written


def stale_artifacts(
    directory: Path = ARTIFACTS_DIR, compiled: dict[str, CompiledContract] | None = None
) -> list[str]:
    """Names of the artifacts in ``directory`` that differ from a fresh compile (empty: fresh)."""
    stale = []
    for contract in (compiled or compile_contracts()).values():
        path = directory / f"{contract.name}.json"
        if not path.exists() or path.read_text(encoding="utf-8") != render(contract):
            stale.append(contract.name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kizuna.chain.compile", description=__doc__.splitlines()[0]
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="rewrite kizuna/chain/artifacts/")
    group.add_argument("--check", action="store_true", help="exit 1 if artifacts are stale")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_artifacts():
            print(f"wrote {path.relative_to(PROJECT_ROOT)}")
        return 0
    stale = stale_artifacts()
    if stale:
        print(
            "stale artifacts: " + ", ".join(stale) + " (run python -m kizuna.chain.compile --write)"
        )
        return 1
    print("artifacts are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
