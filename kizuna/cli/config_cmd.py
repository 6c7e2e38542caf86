"""``kizuna config``: the configuration in effect, where each value comes from, secrets hidden."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from pydantic import SecretStr

from kizuna.cli.options import home_option, resolve_home
from kizuna.cli.output import Column, emit, json_option, print_facts, print_table
from kizuna.errors import ConfigError
from kizuna.stack.home import HOME_ENV, config_file_for, load_settings

REDACTED = "**********"


_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_-]{24,}")
_SECRET_QUERY = re.compile(r"(?i)((?:api[-_]?)?key|token|secret|password)=([^&]+)")


def redact_url(url: str) -> str:
    """``url`` without what may be a credential: a password in the user part, a long token
    as a path segment (``https://mainnet.infura.io/v3/<key>``), ``key=`` / ``token=`` values."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    path = "/".join(REDACTED if _TOKEN_SEGMENT.fullmatch(segment) else segment
                    for segment in parts.path.split("/"))
    query = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={REDACTED}", parts.query)
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def _shown(name: str, value: Any) -> Any:
    if isinstance(value, SecretStr):
        return REDACTED if value.get_secret_value() else ""
    if isinstance(value, str) and name.endswith(("_url", "_api")):
        return redact_url(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _origin(name: str, *, in_env: bool, in_file: set[str], from_home: set[str],
            from_stack: set[str]) -> str:
    if in_env:
        return f"env KIZUNA_{name.upper()}"
    if name in in_file:
        return "config file"
    if name in from_stack:
        return "running kizuna up"
    if name in from_home:
        return "KIZUNA_HOME"
    return "default"


@click.command("config")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A TOML or dotenv settings file (default: $KIZUNA_CONFIG, else "
                   "$KIZUNA_HOME/config.toml when it exists).")
@home_option
@json_option
def config(config_file: Path | None, home_dir: Path | None, as_json: bool) -> None:
    """Print the configuration in effect, secrets redacted.

    Every setting is read, highest priority first, from a KIZUNA_<NAME> environment variable,
    the configuration file, the Kizuna home ($KIZUNA_HOME, default ~/.kizuna: store, database,
    index and deployment paths, and the chain URL and API port of the `kizuna up` running on
    it), then the built-in default. The SOURCE column says which.
    Pointing Kizuna at a real chain or IPFS node is a change here, not in code:

    \b
      export KIZUNA_RPC_URL=https://sepolia.example/rpc KIZUNA_CHAIN_ID=11155111
      export KIZUNA_DEPLOYMENT_FILE=./deployments/11155111.json
      export KIZUNA_STORE=ipfs KIZUNA_IPFS_API=http://127.0.0.1:5001

    \b
    Example:
      kizuna config
      kizuna config --json | jq .values.rpc_url
    """
    from kizuna.config import Settings  # pydantic-settings: not loaded by `kizuna --help`

    home = resolve_home(home_dir)
    source = config_file_for(home, config_file)
    try:
        settings = load_settings(home, config_file=config_file)
    except ConfigError as exc:
        if source is None and "session_secret" in str(exc):
            raise ConfigError(f"{exc} (`kizuna up` writes one into {home.config_file} on its "
                              "first start)") from None
        raise
    in_file = set(Settings.load(source).model_fields_set) - _env_fields() if source else set()
    from_home = set(home.defaults())
    from_stack = set(home.running_defaults())
    rows = []
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = _shown(name, getattr(settings, name))
        values[name] = value
        rows.append({"name": name, "value": "" if value is None else value,
                     "source": _origin(name, in_env=f"KIZUNA_{name.upper()}" in os.environ,
                                       in_file=in_file, from_home=from_home,
                                       from_stack=from_stack)})
    result = {
        "home": home.root,
        "home_from": f"env {HOME_ENV}" if home_dir is None and os.environ.get(HOME_ENV)
        else ("--home" if home_dir is not None else "default"),
        "config_file": source,
        "values": values,
        "sources": {row["name"]: row["source"] for row in rows},
    }

    def human() -> None:
        print_facts({"KIZUNA_HOME": f"{home.root}  ({result['home_from']})",
                     "config file": source or "none (optional: "
                                              f"{home.config_file})"})
        click.echo()
        print_table(rows, [Column("name", "Setting", "bold"), Column("value", "Value"),
                           Column("source", "Source", "dim")])

    emit(result, human=human)


def _env_fields() -> set[str]:
    from kizuna.config import Settings

    return {name for name in Settings.model_fields if f"KIZUNA_{name.upper()}" in os.environ}


__all__ = ["config"]
