"""``KIZUNA_HOME``: where a user's Kizuna keeps its state, keys and configuration.

The layout (created on demand, directories mode 0700)::

    $KIZUNA_HOME/                 default ~/.kizuna
      config.toml                 settings (``kizuna config`` shows them; KIZUNA_* env wins)
      keys/<name>.json            encrypted keystores (v3, scrypt), mode 0600
      chain/anvil-state.json      the local chain's state (``kizuna up``), kept across restarts
      deployments/<chainId>.json  where the contracts are on that chain
      store/                      the embedded content store (ciphertext only)
      ipfs/                       the local IPFS node's repository (``kizuna up --ipfs``)
      kizuna.sqlite3              the service database (receipts, key fragments, sessions)
      index.sqlite3               the chain event index (a cache: safe to delete)
      logs/                       anvil, IPFS and API logs of ``kizuna up``
      up.lock                     held while ``kizuna up`` runs: its pid, ports and URLs
      demo.json                   the demo identities ``kizuna up --demo`` made
      imports/<digest>/<patient>/ the journal of ``kizuna patient import`` (resumable imports)

:func:`load_settings` builds the service's :class:`~kizuna.config.Settings` with the home's
paths — and, while a ``kizuna up`` runs on the home, its chain URL and API port — as
*defaults*: anything set in the environment or a configuration file wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kizuna.filemodes import private_dir

if TYPE_CHECKING:  # pydantic-settings: loaded by the commands that read the settings
    from kizuna.config import Settings

HOME_ENV = "KIZUNA_HOME"
DEFAULT_HOME = Path("~/.kizuna")
LOCAL_CHAIN_ID = 31337
"""anvil's default chain id: the local stack's chain."""
DEFAULT_RPC_PORT = 8545
"""The local Ethereum node's (anvil's) port, ``kizuna up --rpc-port``'s default."""


def default_home() -> Path:
    """``$KIZUNA_HOME``, else ``~/.kizuna`` (absolute, ``~`` expanded)."""
    named = os.environ.get(HOME_ENV)
    return (Path(named) if named else DEFAULT_HOME).expanduser().absolute()


@dataclass(frozen=True, slots=True)
class KizunaHome:
    """The paths of one Kizuna home directory (nothing is created until :meth:`ensure`)."""

    root: Path

    @classmethod
    def resolve(cls, root: str | os.PathLike[str] | None = None) -> KizunaHome:
        """The home at ``root`` (``--home``), else ``$KIZUNA_HOME``, else ``~/.kizuna``."""
        return cls(Path(root).expanduser().absolute() if root is not None else default_home())

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def chain_dir(self) -> Path:
        return self.root / "chain"

    @property
    def anvil_state(self) -> Path:
        return self.chain_dir / "anvil-state.json"

    @property
    def deployments_dir(self) -> Path:
        return self.root / "deployments"

    def deployment_file(self, chain_id: int = LOCAL_CHAIN_ID) -> Path:
        return self.deployments_dir / f"{chain_id}.json"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def imports_dir(self) -> Path:
        """The journals of resumable imports (``kizuna.client.importer``)."""
        return self.root / "imports"

    @property
    def ipfs_repo(self) -> Path:
        return self.root / "ipfs"

    @property
    def database_file(self) -> Path:
        return self.root / "kizuna.sqlite3"

    @property
    def index_file(self) -> Path:
        return self.root / "index.sqlite3"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def lock_file(self) -> Path:
        return self.root / "up.lock"

    @property
    def demo_file(self) -> Path:
        return self.root / "demo.json"

    def ensure(self) -> KizunaHome:
        """Create the home and its directories (mode 0700: keys and health data live here),
        tightening any that exist with a more open mode (logged)."""
        for directory in (self.root, self.keys_dir, self.chain_dir, self.deployments_dir,
                          self.logs_dir):
            private_dir(directory)
        return self

    def running_stack(self) -> dict[str, Any]:
        """What the ``kizuna up`` running on this home says about itself (``{}`` if none)."""
        from kizuna.stack.lock import lock_held, read_lock

        return read_lock(self.lock_file) if lock_held(self.lock_file) else {}

    def running_defaults(self) -> dict[str, Any]:
        """Where the running ``kizuna up`` of this home serves (its chain, its API port), so
        that other commands find it whatever ports it was given."""
        running = self.running_stack()
        found: dict[str, Any] = {}
        if isinstance(running.get("rpc_url"), str):
            found["rpc_url"] = running["rpc_url"]
        if isinstance(running.get("api_port"), int) and isinstance(running.get("api_url"), str):
            found["api_port"] = running["api_port"]
            found["siwe_domain"] = f"127.0.0.1:{running['api_port']}"
            found["siwe_uri"] = running["api_url"]
        return found

    def defaults(self, *, chain_id: int | None = None) -> dict[str, Any]:
        """Settings this home provides unless configured otherwise: its paths, and the
        addresses of its running ``kizuna up``."""
        return {
            "store_path": self.store_dir,
            "database_url": f"sqlite:///{self.database_file}",
            "index_path": self.index_file,
            "deployment_file": self.deployment_file(chain_id or LOCAL_CHAIN_ID),
            **self.running_defaults(),
        }


def config_file_for(home: KizunaHome,
                    explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file in effect: ``--config``, ``$KIZUNA_CONFIG``, the home's
    ``config.toml`` when it exists, or none."""
    if explicit is not None:
        return Path(explicit).expanduser()
    named = os.environ.get("KIZUNA_CONFIG")
    if named:
        return Path(named).expanduser()
    return home.config_file if home.config_file.is_file() else None


def load_settings(home: KizunaHome, *, config_file: str | os.PathLike[str] | None = None,
                  sessions: bool = True, **overrides: Any) -> Settings:
    """The effective settings: ``overrides`` > environment > config file > the home's paths >
    built-in defaults (``sessions``: :meth:`Settings.load`'s). Raises ``ConfigError`` naming
    the bad field."""
    from kizuna.config import Settings

    source = config_file_for(home, config_file)
    configured = Settings.load(source, sessions=sessions, **overrides)
    explicit = configured.model_fields_set
    home_defaults = {name: value
                     for name, value in home.defaults(chain_id=configured.chain_id).items()
                     if name not in explicit}
    if not home_defaults:
        return configured
    return Settings.load(source, sessions=sessions, **home_defaults, **overrides)


__all__ = [
    "DEFAULT_HOME",
    "DEFAULT_RPC_PORT",
    "HOME_ENV",
    "LOCAL_CHAIN_ID",
    "KizunaHome",
    "config_file_for",
    "default_home",
    "load_settings",
]
