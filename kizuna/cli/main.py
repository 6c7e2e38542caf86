"""The ``kizuna`` command group. Each sub-command lives in a module of its own.

:func:`main` is the console script. It runs the group and turns what escapes a command into one
line on stderr and a meaningful exit code (``kizuna.cli.output``): a ``KizunaError`` by its kind,
a usage error as 2, Ctrl-C as 130 — never a traceback.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import click

from kizuna import __version__
from kizuna.cli.output import ExitCode, json_requested, report_error
from kizuna.cli.startup import loading
from kizuna.errors import KizunaError

# `import httpx` also imports httpx's own command-line client (httpx._main, and with it rich's
# console and pygments) whenever click and rich are installed, as they are here: ~70 ms of CPU
# in every command that talks to the API or a node, for a client no command runs. Marked absent
# before httpx is first imported, httpx defines its stub `httpx.main` instead.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

COMMANDS: dict[str, str] = {
    "up": "kizuna.cli.up:up",
    "status": "kizuna.cli.up:status",
    "down": "kizuna.cli.up:down",
    "keys": "kizuna.cli.keys:keys",
    "config": "kizuna.cli.config_cmd:config",
    "serve": "kizuna.cli.serve:serve",
    "demo": "kizuna.cli.demo:demo",
    "patient": "kizuna.cli.patient:patient",
    "provider": "kizuna.cli.provider:provider",
    "registrar": "kizuna.cli.registrar:registrar",
    "researcher": "kizuna.cli.research:researcher",
    "audit": "kizuna.cli.audit:audit",
    "admin": "kizuna.cli.admin:admin",
    "store": "kizuna.cli.store:store",
    "proxy": "kizuna.cli.proxy:proxy",
}
"""Sub-command name → ``module:attribute``. A command's module is imported only when that
command runs (or ``kizuna --help`` lists it), so `kizuna keys address` does not pay for web3,
uvicorn and the API."""


class LazyGroup(click.Group):
    """A group whose sub-commands (:data:`COMMANDS`) are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in COMMANDS:
            module_name, attribute = COMMANDS[cmd_name].split(":")
            with loading():  # eth_utils, pydantic, ...: the collector paused while they load
                module = importlib.import_module(module_name)
            found = getattr(module, attribute)
            assert isinstance(found, click.Command)
            self.add_command(found, cmd_name)
        return found


@click.group(cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kizuna")
def cli() -> None:
    """Kizuna: a personal health record the patient owns.

    Consent is recorded on Ethereum; health records are encrypted on the patient's side and
    stored content-addressed (IPFS). Providers read only what a live on-chain grant allows, and
    every read leaves a signed receipt that auditors can verify against the chain.

    \b
    Start here:
      kizuna up --demo          the whole stack on 127.0.0.1, with demo patients and providers
      kizuna keys create alice  an encrypted key of your own in $KIZUNA_HOME/keys
      kizuna config             the configuration in effect (secrets redacted)

    State, keys and configuration live in KIZUNA_HOME (default ~/.kizuna); every setting can
    also be given as a KIZUNA_* environment variable. Commands that print data take --json.
    Run `kizuna COMMAND --help` for the manual of each command; exit codes are listed in
    docs/cli.md (0 ok, 1 error, 2 usage, 3 not found, 4 denied, 5 conflict, 6 invalid input,
    69 unavailable, 78 configuration, 130 interrupted).
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``kizuna`` console script (see the module docstring for exit codes)."""
    # siwe's grammar library warns about its own rule definitions at import: noise for users.
    warnings.filterwarnings("ignore", module=r"abnf(\.|$)")
    args = sys.argv[1:] if argv is None else argv
    try:
        with cli.make_context("kizuna", list(args)) as ctx:
            try:
                cli.invoke(ctx)
            except KizunaError as exc:
                sys.exit(report_error(exc, as_json=json_requested(ctx)))
    except click.exceptions.Exit as exc:  # --help, --version
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("kizuna: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("\nkizuna: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except KizunaError as exc:  # raised while parsing (a parameter callback)
        sys.exit(report_error(exc))
