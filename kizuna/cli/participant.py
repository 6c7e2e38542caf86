"""What the role commands (``kizuna patient|provider|registrar|audit``) share: who you are
(``--key NAME``, unlocked with the passphrase rules of ``kizuna.cli.options``), where the
service is (``--api URL``, else the configured ``api_host``/``api_port``; or ``--local``: the
use cases in-process against the configured chain, store and database), and small parsers
(a participant given as a key name or an address, dates, record ids).

Everything is signed here with the user's key; the API only ever gets envelopes, public keys,
signatures and transaction hashes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kizuna.cli.options import home_option, passphrase_option, read_passphrase, resolve_home
from kizuna.cli.startup import loading
from kizuna.errors import InputError, NodeUnreachable, NotFoundError
from kizuna.stack.home import KizunaHome, load_settings
from kizuna.stack.keyring import Keyring
from kizuna.types import Address

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.chain.rpc import ChainReader
    from kizuna.chain.signers import KeystoreSigner
    from kizuna.client.service import KizunaService
    from kizuna.config import Settings
    from kizuna.services.context import ServiceContext

F = TypeVar("F", bound=Callable[..., Any])

KEY_ENV = "KIZUNA_KEY"


def key_option(func: F) -> F:
    return click.option("--key", "key_name", envvar=KEY_ENV, metavar="NAME",
                        help=f"Your key in $KIZUNA_HOME/keys (or ${KEY_ENV}).")(func)


def chain_options(func: F) -> F:
    """``--key``, ``--passphrase-file``, ``--home``, ``--config``: for commands that talk to the
    chain only (the registrar's)."""
    for option in (
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Configuration file (default: $KIZUNA_CONFIG, else "
                          "$KIZUNA_HOME/config.toml)."),
        home_option, passphrase_option, key_option,
    ):
        func = option(func)
    return func


def role_options(func: F) -> F:
    """``--key``, ``--passphrase-file``, ``--home``, ``--config``, ``--api URL``, ``--local``."""
    for option in (
        click.option("--local", is_flag=True,
                     help="Run the service's use cases in this process against the configured "
                          "chain, content store and database instead of the API."),
        click.option("--api", "api_url", metavar="URL",
                     help="The Kizuna API (default: http://<api_host>:<api_port> of the "
                          "configuration, e.g. the one `kizuna up` started)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Configuration file (default: $KIZUNA_CONFIG, else "
                          "$KIZUNA_HOME/config.toml)."),
        home_option, passphrase_option, key_option,
    ):
        func = option(func)
    return func


@dataclass(frozen=True, slots=True)
class RoleArgs:
    """The values of :func:`role_options`."""

    key_name: str | None
    passphrase_file: Path | None
    home_dir: Path | None
    config_file: Path | None
    api_url: str | None
    local: bool

    @classmethod
    def take(cls, kwargs: dict[str, Any]) -> RoleArgs:
        """Pop the role options out of a command's keyword arguments."""
        return cls(key_name=kwargs.pop("key_name"), passphrase_file=kwargs.pop("passphrase_file"),
                   home_dir=kwargs.pop("home_dir"), config_file=kwargs.pop("config_file"),
                   api_url=kwargs.pop("api_url", None), local=kwargs.pop("local", False))


@dataclass
class Session:
    """An unlocked participant connected to the service (API or in-process) and the chain."""

    home: KizunaHome
    settings: Settings
    signer: KeystoreSigner
    connect: Callable[[], Chain]
    service: KizunaService
    ctx: ServiceContext | None
    api_url: str | None
    _chain: Chain | None = field(default=None, init=False, repr=False)

    @property
    def chain(self) -> Chain:
        """The participant's web3 connection to the chain, made when a command first needs
        it: a read of one's own record never does (it reads over ``ChainReader``)."""
        if self._chain is None:
            self._chain = self.connect()
        return self._chain

    @property
    def address(self) -> Address:
        return self.signer.address

    def resolve(self, who: str, *, field: str) -> Address:
        return resolve_participant(who, home=self.home, field=field)


def settings_of(args: RoleArgs) -> tuple[KizunaHome, Settings]:
    home = resolve_home(args.home_dir)
    # A participant's command does not serve: the service's own safety checks (a real
    # session secret outside development) are not its concern.
    return home, load_settings(home, config_file=args.config_file, environment="development")


def deployment_file(settings: Settings) -> Path:
    """The configured deployment file (``NotFoundError`` saying how to get one)."""
    deployment = settings.deployment_file
    if deployment is None or not Path(deployment).is_file():
        raise NotFoundError(f"no deployment file at {deployment}: start the local stack with "
                            "`kizuna up`, or set KIZUNA_DEPLOYMENT_FILE")
    return Path(deployment)


def connect_chain(settings: Settings) -> Chain:
    with loading():  # web3, eth_account: the collector paused while they load
        from kizuna.chain.connection import connect

    return connect(settings.rpc_url, deployment_file(settings), timeout=settings.rpc_timeout_s)


def connect_reader(settings: Settings) -> ChainReader | None:
    """The lean, web3-free view of the chain (:class:`~kizuna.chain.rpc.ChainReader`), checked
    like :func:`connect_chain`; ``None`` for a node URL it does not take (credentials)."""
    from kizuna.chain.rpc import ChainReader, LeanRpc

    if not LeanRpc.usable(settings.rpc_url):
        return None
    return ChainReader.connect(settings.rpc_url, deployment_file(settings),
                               timeout=settings.rpc_timeout_s)


def unlock(args: RoleArgs, home: KizunaHome) -> KeystoreSigner:
    return unlock_started(args, home).result()


def unlock_started(args: RoleArgs, home: KizunaHome) -> Future[KeystoreSigner]:
    """The key's unlocking, begun: the key is checked and the passphrase read here, the
    keystore's KDF (scrypt, ~0.8 s of one core, its parameters untouched) runs on a thread —
    it releases the GIL — while the caller imports the client and reaches the service; the
    result (or ``WrongPassphrase``) comes from ``.result()``."""
    if not args.key_name:
        raise InputError("key", f"which key? give --key NAME (or set {KEY_ENV})")
    ring = Keyring(home.keys_dir)
    ring.address(args.key_name)  # a missing key is reported before any prompt
    passphrase = read_passphrase(args.passphrase_file)
    name = args.key_name
    # What the unlock imports (eth_account, the signers) is imported here, before the thread:
    # the caller imports the client meanwhile, which needs them too, and one module imported
    # by two threads at once can fail in CPython (KeyError in _find_and_load).
    with loading():
        import kizuna.chain.signers  # noqa: F401
    started: Future[KeystoreSigner] = Future()

    def run() -> None:
        try:
            started.set_result(ring.unlock(name, passphrase))
        except BaseException as exc:  # handed to .result(), raised in the caller
            started.set_exception(exc)

    threading.Thread(target=run, name="kizuna-unlock", daemon=True).start()
    return started


@contextmanager
def open_session(args: RoleArgs, *,
                 unlocking: Future[KeystoreSigner] | None = None) -> Iterator[Session]:
    """Unlock the key, connect the chain and the service; close everything afterwards.
    ``unlocking``: the caller's :func:`unlock_started` (the passphrase read already)."""
    home, settings = settings_of(args)
    if unlocking is None:
        unlocking = unlock_started(args, home)
    if args.local:
        with loading():
            from kizuna.chain.relayer import Relayer
            from kizuna.chain.signers import LocalKeySigner
            from kizuna.client.local import LocalService
            from kizuna.services.context import close_context, open_context

        signer = unlocking.result()
        deployment_file(settings)
        ctx = open_context(settings)
        try:
            relayer = (Relayer(ctx.chain, LocalKeySigner(settings.relayer_key.get_secret_value()))
                       if settings.relayer_key is not None else None)
            chain = ctx.chain
            yield Session(home=home, settings=settings, signer=signer, connect=lambda: chain,
                          service=LocalService(ctx, relayer=relayer), ctx=ctx, api_url=None)
        finally:
            close_context(ctx)
        return
    with loading():
        from kizuna.client.api_service import ApiService
        from kizuna.client.http import ApiClient

    url = args.api_url or f"http://{settings.api_host}:{settings.api_port}"
    api = ApiClient(url, timeout=120.0)
    try:
        signer = unlocking.result()
        try:
            api.login(signer)
        except NodeUnreachable:
            raise NodeUnreachable(f"the Kizuna API at {url} does not answer (start it with "
                                  "`kizuna up`, or give --api URL or --local)") from None
        # web3 is connected only when a command first needs the full chain (a transaction of
        # the participant's own, the index); the lean reader answers a record's read.
        chain_once = cache(lambda: connect_chain(settings))
        service = ApiService(api, chain_once, reader=connect_reader(settings))
        try:
            yield Session(home=home, settings=settings, signer=signer, connect=chain_once,
                          service=service, ctx=None, api_url=url)
        finally:
            service.close()
    finally:
        api.close()


# --- parsers -----------------------------------------------------------------------------------


def resolve_participant(who: str, *, home: KizunaHome, field: str) -> Address:
    """An address given as ``0x...`` or as the name of a key in the home's keyring."""
    from eth_utils.address import is_address, to_checksum_address

    if who.startswith("0x"):
        if not is_address(who):
            raise InputError(field, f"{who!r} is not an Ethereum address")
        return Address(to_checksum_address(who))
    ring = Keyring(home.keys_dir)
    try:
        exists = ring.exists(who)
    except InputError:
        exists = False
    if not exists:
        raise NotFoundError(f"unknown {field} {who!r}: neither a 0x address nor a key in "
                            f"{ring.directory}")
    return ring.address(who)


def known_names(home: KizunaHome) -> dict[str, str]:
    """Addresses → key names of the home's keyring (to show people who is who; never trusted
    for a decision)."""
    return {str(e.address): e.name for e in Keyring(home.keys_dir).entries()
            if e.address is not None}


def parse_when(value: str, *, field: str, end_of_day: bool = False) -> int:
    """Unix seconds from ``YYYY-MM-DD``, an ISO date-time (UTC unless it says), or seconds."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return int(moment.timestamp()) + (86_399 if end_of_day else 0)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(field, f"{value!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def show_time(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def hex32(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def short(value: bytes | str, digits: int = 12) -> str:
    """A 0x id cut for tables (prefixes are accepted wherever an id is asked for)."""
    text = value if isinstance(value, str) else hex32(value)
    return text[: 2 + digits] + "…" if len(text) > 2 + digits else text


def match_id(given: str, candidates: Sequence[bytes], *, field: str) -> bytes:
    """The one of ``candidates`` whose 0x hex starts with ``given`` (at least 6 digits)."""
    text = given.lower().removeprefix("0x")
    if len(text) < 6 or any(c not in "0123456789abcdef" for c in text):
        raise InputError(field, f"{given!r} is not a hex id (or a prefix of 6+ digits)")
    found = [c for c in candidates if bytes(c).hex().startswith(text)]
    if not found:
        raise NotFoundError(f"no {field} {given}")
    if len(found) > 1 and len(text) < 64:
        raise InputError(field, f"{given!r} matches {len(found)} ids: give more digits")
    return bytes(found[0])


def full_id(given: str, *, field: str) -> bytes:
    text = given.lower().removeprefix("0x")
    if len(text) != 64:
        raise InputError(field, f"{given!r} is not a 32-byte 0x id")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError(field, f"{given!r} is not hex") from None


def write_output(data: bytes, output: Path | None) -> None:
    """``data`` to ``output`` (0600: it is health data) or to stdout."""
    if output is None:
        import sys

        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise InputError("output", f"cannot write {output}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


__all__ = [
    "KEY_ENV",
    "RoleArgs",
    "Session",
    "chain_options",
    "connect_chain",
    "full_id",
    "hex32",
    "known_names",
    "match_id",
    "open_session",
    "parse_when",
    "resolve_participant",
    "role_options",
    "settings_of",
    "short",
    "show_time",
    "unlock",
    "write_output",
]
