"""``kizuna serve``: run the Kizuna API on 127.0.0.1. Configuration as for every command:
``KIZUNA_*`` variables > ``--config`` file (else the home's ``config.toml``) > the home's paths >
defaults — so ``kizuna serve`` and ``kizuna config`` always agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kizuna.cli.options import home_option, resolve_home


@click.command()
@home_option
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="a TOML or dotenv file of settings (environment variables win)")
@click.option("--host", default=None, help="listen address (default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="listen port (default 8000)")
@click.option("--log-level", default="info",
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(home_dir: Path | None, config_file: Path | None, host: str | None, port: int | None,
          log_level: str) -> None:
    """Serve the Kizuna API (patients, providers, auditors) until interrupted.

    \b
    Example, against a deployment on a testnet and a Kubo node:
      KIZUNA_RPC_URL=https://your-node/rpc KIZUNA_DEPLOYMENT_FILE=deployments/11155111.json \\
      KIZUNA_STORE=ipfs KIZUNA_SESSION_SECRET=$(openssl rand -base64 48) kizuna serve
    """
    from kizuna.cli.startup import loading

    with loading():
        from kizuna.api.server import serve as run
        from kizuna.stack.home import load_settings

    overrides: dict[str, Any] = {}  # Settings fields, checked by Settings.load
    if host is not None:
        overrides["api_host"] = host
    if port is not None:
        overrides["api_port"] = port
    home = resolve_home(home_dir).ensure()  # the index and database default into it
    settings = load_settings(home, config_file=config_file, **overrides)
    click.echo(f"kizuna API on http://{settings.api_host}:{settings.api_port} "
               f"(chain {settings.rpc_url}, store {settings.store}, {settings.environment})",
               err=True)
    run(settings, log_level=log_level)
