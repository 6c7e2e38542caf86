"""Everything the ``kizuna`` command prints, and the one place errors become exit codes.

* **Data** goes to stdout: a table (rich) or ``key  value`` lines for people, or — with a
  command's ``--json`` flag — exactly one JSON document, so scripts can ``| jq``.
* **Progress** (long uploads, imports, audits) is a rich progress bar on stderr, shown only on a
  terminal and never in ``--json`` mode.
* **Errors** are one line on stderr (``kizuna: error: <what went wrong>``; with ``--json`` one
  JSON object ``{"error": {...}}``), never a traceback, and the process exits with a code that
  says what kind of failure it was (:class:`ExitCode`, documented in docs/cli.md).

:func:`exit_code_for` is the mapping from Kizuna's exception tree (``kizuna.errors``) to exit
codes; :func:`report_error` prints one; ``kizuna.cli.main`` calls both for every command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:  # rich is imported by the functions that print with it, not by every command
    from rich.console import Console
    from rich.progress import Progress, Task
    from rich.text import Text

from kizuna.errors import (
    AccessDenied,
    ConfigError,
    ConflictError,
    InputError,
    KizunaError,
    NodeUnreachable,
    NotFoundError,
    StoreUnavailable,
)

JSON_META_KEY = "kizuna.output.json"
"""Where ``--json`` is remembered in click's context ``meta`` (shared by nested contexts)."""


class ExitCode(IntEnum):
    """What a ``kizuna`` exit status means (docs/cli.md "Exit codes")."""

    OK = 0
    ERROR = 1
    """A Kizuna error not covered below (a reverted transaction, a failed integrity check, ...)."""
    USAGE = 2
    """The command line itself is wrong (unknown option, missing argument): click's code."""
    NOT_FOUND = 3
    """A named thing does not exist: key, record, deployment, file."""
    ACCESS_DENIED = 4
    """Not allowed: no live grant, not the owner, or a wrong passphrase."""
    CONFLICT = 5
    """Already exists or already running: a key name taken, a port in use, a second stack."""
    INVALID_INPUT = 6
    """Input rejected: which field and why (bad address, invalid FHIR, bad CID)."""
    UNAVAILABLE = 69
    """A service is unreachable: the Ethereum node, the content store, the API (sysexits'
    EX_UNAVAILABLE). Retrying later may succeed."""
    CONFIG = 78
    """The configuration is missing, malformed or unsafe (sysexits' EX_CONFIG)."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C during work (128 + SIGINT, as shells report it)."""


_EXIT_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    # Most specific first: some classes have two parents (ContentNotFound, InvalidCid).
    (NodeUnreachable, ExitCode.UNAVAILABLE),
    (StoreUnavailable, ExitCode.UNAVAILABLE),
    (AccessDenied, ExitCode.ACCESS_DENIED),
    (NotFoundError, ExitCode.NOT_FOUND),
    (ConflictError, ExitCode.CONFLICT),
    (InputError, ExitCode.INVALID_INPUT),
    (ConfigError, ExitCode.CONFIG),
)


def exit_code_for(error: KizunaError) -> ExitCode:
    """The exit code of a Kizuna error (see :class:`ExitCode`)."""
    from kizuna.chain.keystore import WrongPassphrase

    if isinstance(error, WrongPassphrase):
        return ExitCode.ACCESS_DENIED
    for kind, code in _EXIT_CODES:
        if isinstance(error, kind):
            return code
    return ExitCode.ERROR


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def report_error(error: KizunaError, *, as_json: bool = False) -> ExitCode:
    """Print ``error`` as one line on stderr and return its exit code (the caller exits)."""
    code = exit_code_for(error)
    message = _one_line(str(error))
    if as_json:
        body: dict[str, Any] = {"kind": type(error).__name__, "message": message,
                                "exit_code": int(code)}
        if isinstance(error, InputError) and error.field:
            body["field"] = error.field
            body["reason"] = error.reason
        click.echo(json.dumps({"error": body}), err=True)
    else:
        click.echo(f"kizuna: error: {message}", err=True)
    return code


# --- --json ----------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_META_KEY] = True
    return value


def json_option(func: F) -> F:
    """The ``--json`` flag of a command that prints data (errors then print as JSON too)."""
    return click.option(
        "--json", "as_json", is_flag=True, default=False, is_eager=True,
        expose_value=True, callback=_remember_json,
        help="Print one JSON document on stdout instead of text (errors as JSON on stderr).",
    )(func)


def json_requested(ctx: click.Context | None = None) -> bool:
    """Whether the running command was given ``--json``."""
    current = ctx if ctx is not None else click.get_current_context(silent=True)
    return bool(current is not None and current.meta.get(JSON_META_KEY))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """One JSON document on stdout (bytes as 0x-hex, paths as strings)."""
    click.echo(json.dumps(_jsonable(data), indent=2, sort_keys=False))


# --- people's output -------------------------------------------------------------------------


def console() -> Console:
    """A rich console on stdout (plain text, and no folding of long values such as addresses,
    when stdout is not a terminal)."""
    from rich.console import Console

    probe = Console()
    return Console(highlight=False, soft_wrap=True,
                   width=None if probe.is_terminal else NON_TERMINAL_WIDTH)


NON_TERMINAL_WIDTH = 200


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table: the row key it shows and its heading."""

    key: str
    heading: str
    style: str | None = None


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *,
                title: str | None = None, empty: str = "nothing to show") -> None:
    """A table of ``rows`` (one dict each) for people; ``empty`` when there are none."""
    if not rows:
        click.echo(empty)
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column.heading, style=column.style, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c.key)) for c in columns))
    console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value)


def print_facts(facts: Mapping[str, Any], *, title: str | None = None) -> None:
    """``label  value`` lines, aligned (one record's details, the stack's addresses)."""
    if title:
        click.echo(click.style(title, bold=True))
    width = max((len(k) for k in facts), default=0)
    for key, value in facts.items():
        click.echo(f"  {key:<{width}}  {_cell(value)}")


def emit(data: Any, *, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON when ``--json`` was given, else call ``human`` to print it."""
    if json_requested():
        print_json(data)
    else:
        human()


# --- progress --------------------------------------------------------------------------------


class ProgressTask:
    """A handle on one progress bar: ``advance(n)``; a no-op when progress is not shown."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def update(self, *, total: float | None = None, description: str | None = None,
               completed: float | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, total=total, description=description,
                                  completed=completed)


def _rate_column(unit: str) -> Any:
    """A column of items a second (``12,345 records/s``): what a long import or export runs
    at (a rich ``ProgressColumn``, made when a bar is shown)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {unit}/s" if speed else "")

    return RateColumn()


@contextmanager
def progress(description: str, *, total: float | None = None,
             unit: str = "items") -> Iterator[ProgressTask]:
    """A progress bar on stderr for long work (``unit="bytes"`` shows sizes) with its rate and
    the time left; shown only on a terminal and never with ``--json`` (scripts get silence,
    then the result)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    err = Console(stderr=True)
    if json_requested() or not err.is_terminal:
        yield ProgressTask(None, None)
        return
    counter = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    rate = TransferSpeedColumn() if unit == "bytes" else _rate_column(unit)
    with Progress(TextColumn("{task.description}"), BarColumn(), counter, rate,
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        yield ProgressTask(bar, bar.add_task(description, total=total))


__all__ = [
    "JSON_META_KEY",
    "Column",
    "ExitCode",
    "ProgressTask",
    "console",
    "emit",
    "exit_code_for",
    "json_option",
    "json_requested",
    "print_facts",
    "print_json",
    "print_table",
    "progress",
    "report_error",
]
