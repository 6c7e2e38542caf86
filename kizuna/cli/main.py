"""The ``kizuna`` command group. Each sub-command lives in a module of its own."""

from __future__ import annotations

import sys

import click

from kizuna import __version__
from kizuna.errors import KizunaError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kizuna")
def cli() -> None:
    """Kizuna: a personal health record the patient owns.

    Consent is recorded on Ethereum; health records are encrypted on the patient's side and
    stored content-addressed (IPFS). Run `kizuna COMMAND --help` for a manual of each command.
    """


def _register_commands() -> None:
    """Sub-commands are imported here, not at module import, so `kizuna --help` stays fast."""
    from kizuna.cli import demo

    cli.add_command(demo.demo)
    from kizuna.cli import serve

    cli.add_command(serve.serve)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``kizuna`` console script: Kizuna errors become one line and exit 1."""
    _register_commands()
    try:
        cli.main(args=argv, prog_name="kizuna", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KizunaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
