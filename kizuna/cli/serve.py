"""``kizuna serve``: run the Kizuna API on 127.0.0.1 (configuration: ``KIZUNA_*`` variables or a
TOML / dotenv file given with ``--config``)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="a TOML or dotenv file of settings (environment variables win)")
@click.option("--host", default=None, help="listen address (default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="listen port (default 8000)")
@click.option("--log-level", default="info",
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(config_file: Path | None, host: str | None, port: int | None, log_level: str) -> None:
    """Serve the Kizuna API (patients, providers, auditors) until interrupted."""
    from kizuna.api.server import serve as run
    from kizuna.config import Settings

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["api_host"] = host
    if port is not None:
        overrides["api_port"] = port
    settings = Settings.load(config_file, **overrides)
    click.echo(f"kizuna API on http://{settings.api_host}:{settings.api_port} "
               f"(chain {settings.rpc_url}, store {settings.store}, {settings.environment})",
               err=True)
    run(settings, log_level=log_level)
