"""Options shared by several ``kizuna`` commands: ``--home`` and how a passphrase is given.

A passphrase never comes from the command line (it would sit in the shell history and in
``ps``): it is read from ``--passphrase-file``, else ``$KIZUNA_PASSPHRASE``, else a hidden
prompt on the terminal. With none of them and no terminal, the command fails with one line
saying how to give one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kizuna.errors import InputError
from kizuna.stack.home import KizunaHome

if TYPE_CHECKING:  # eth_account: loaded when a key is unlocked, not by every command
    from kizuna.chain.signers import KeystoreSigner

PASSPHRASE_ENV = "KIZUNA_PASSPHRASE"

F = TypeVar("F", bound=Callable[..., Any])


def home_option(func: F) -> F:
    """``--home DIR``: the Kizuna home to use (default ``$KIZUNA_HOME`` or ``~/.kizuna``)."""
    return click.option(
        "--home", "home_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Kizuna home directory (default: $KIZUNA_HOME, else ~/.kizuna).",
    )(func)


def resolve_home(home_dir: Path | None) -> KizunaHome:
    return KizunaHome.resolve(home_dir)


def passphrase_option(func: F) -> F:
    """``--passphrase-file FILE``: read the keystore passphrase from the first line of FILE."""
    return click.option(
        "--passphrase-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help=f"Read the passphrase from this file's first line (else ${PASSPHRASE_ENV}, "
             "else a prompt). Never on the command line.",
    )(func)


def read_passphrase(passphrase_file: Path | None, *, confirm: bool = False,
                    prompt: str = "Passphrase") -> str:
    """The passphrase from the file, the environment or a hidden prompt (in that order)."""
    if passphrase_file is not None:
        try:
            lines = passphrase_file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise InputError("passphrase-file", f"{passphrase_file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError("passphrase-file", f"{passphrase_file} unreadable: "
                                                f"{exc.__class__.__name__}") from None
        if not lines or not lines[0]:
            raise InputError("passphrase-file", f"{passphrase_file} is empty")
        return lines[0]
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise InputError("passphrase", f"none given and no terminal to ask on: set "
                                       f"{PASSPHRASE_ENV} or use --passphrase-file")
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    if not value:
        raise InputError("passphrase", "must not be empty")
    return value


def unlock_key(home: KizunaHome, name: str, passphrase_file: Path | None) -> KeystoreSigner:
    """The signer of key ``name`` of ``home``: a missing or corrupted file is reported before
    the passphrase is asked for, a wrong passphrase after (``WrongPassphrase``, exit 4)."""
    from kizuna.stack.keyring import Keyring

    ring = Keyring(home.keys_dir)
    ring.address(name)
    return ring.unlock(name, read_passphrase(passphrase_file))


def api_url_for(home: KizunaHome, explicit: str | None = None) -> str:
    """The API a command talks to: ``explicit`` (``--api-url``), else the running ``kizuna up``
    of ``home`` (its lock file), else ``http://<api_host>:<api_port>`` of the configuration."""
    if explicit:
        return explicit.rstrip("/")
    from kizuna.stack.home import load_settings

    running = home.running_stack().get("api_url")
    if isinstance(running, str):
        return running.rstrip("/")
    settings = load_settings(home, environment="development")  # only the address is read
    return f"http://{settings.api_host}:{settings.api_port}"


__all__ = ["PASSPHRASE_ENV", "api_url_for", "home_option", "passphrase_option",
           "read_passphrase", "resolve_home", "unlock_key"]
