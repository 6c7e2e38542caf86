"""``kizuna up`` (the whole local stack in one command) and ``kizuna status`` (is it up?)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from kizuna.chain.localnode import pid_running
from kizuna.cli.options import api_url_for, home_option, resolve_home
from kizuna.cli.output import (
    emit,
    json_option,
    json_requested,
    print_facts,
    progress,
)
from kizuna.errors import KizunaError, NodeUnreachable, NotFoundError
from kizuna.stack.home import DEFAULT_RPC_PORT
from kizuna.stack.lock import lock_held, read_lock

if TYPE_CHECKING:  # the stack (web3, uvicorn, the service) is imported by `kizuna up` when it
    import httpx  # runs, httpx by `kizuna status`: not by `kizuna down` or `kizuna --help`

    from kizuna.stack.local import StackInfo

STATUS_TIMEOUT_S = 30.0


def _say(text: str) -> None:
    if not json_requested():
        click.echo(click.style("▸ ", fg="cyan") + text, err=True)


@contextmanager
def _step(description: str, total: int | None) -> Iterator[Any]:
    _say(description)
    with progress(description, total=total) as bar:
        yield bar


@click.command("up")
@click.option("--port", "api_port", type=click.IntRange(1, 65535), default=None,
              help="The API's port on 127.0.0.1 (default: the configured api_port, 8000).")
@click.option("--rpc-port", type=click.IntRange(1, 65535), default=DEFAULT_RPC_PORT,
              show_default=True, help="The local Ethereum node's (anvil's) port.")
@click.option("--ipfs", is_flag=True,
              help="Store content in a local IPFS node (js-ipfs, repository in "
                   "$KIZUNA_HOME/ipfs) instead of the embedded store.")
@click.option("--instances", type=click.IntRange(1, 64), default=1, show_default=True,
              help="API instances: more than 1 runs each as its own `kizuna serve` process on "
                   "consecutive ports from --port, sharing the chain, the store and the "
                   "database; one of them (elected) follows the index and anchors receipts.")
@click.option("--proxies", type=click.IntRange(0, 16), default=0, show_default=True,
              help="Threshold proxy nodes: each its own `kizuna proxy serve` process with its "
                   "own database and key, on consecutive ports from --port + 801, listed in a "
                   "ProxyRegistry (docs/proxies.md). 0: the service alone (1-of-1).")
@click.option("--threshold", type=click.IntRange(1, 16), default=None,
              help="Proxy nodes a read needs (default: 2 with 3 or more nodes, else 1).")
@click.option("--database", "database_url", default=None, metavar="URL",
              help="The service database, e.g. postgresql://user@host/db (default: the "
                   "SQLite file in $KIZUNA_HOME).")
@click.option("--demo", is_flag=True,
              help="Also create demo patients (aiko, kenji), providers (dr-tanaka, dr-sato) "
                   "and a registrar, with FHIR histories, grants and reads (first time only).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A TOML or dotenv settings file (default: $KIZUNA_HOME/config.toml).")
@click.option("--open", "open_browser", is_flag=True,
              help="Open the web app in the default browser once the stack is running.")
@home_option
@json_option
def up(api_port: int | None, rpc_port: int, ipfs: bool, instances: int, proxies: int,
       threshold: int | None, database_url: str | None, demo: bool,
       config_file: Path | None, open_browser: bool, home_dir: Path | None, as_json: bool) -> None:
    """Run the whole Kizuna stack on 127.0.0.1 until Ctrl-C.

    Starts a local Ethereum node (anvil; its state kept in $KIZUNA_HOME/chain, so it survives
    a restart), deploys the contracts on the first start (later starts verify them), opens the
    content store (embedded, or a local IPFS node with --ipfs) and the database in
    $KIZUNA_HOME, and serves the API. Then prints where everything is and what to try next.
    Ctrl-C or SIGTERM stops everything cleanly (exit 0). Only one `kizuna up` runs per home;
    a second one, or a port in use, is refused with the pid in the way (exit 5).

    With --json, one JSON line describing the running stack is printed once it is ready.

    \b
    Examples:
      kizuna up --demo
      kizuna up --port 8080 --rpc-port 8546 --home /tmp/kizuna-try
      KIZUNA_HOME=~/kizuna-ipfs kizuna up --ipfs
      kizuna up --instances 3 --ipfs --database postgresql://kizuna@127.0.0.1/kizuna
      kizuna up --proxies 3 --threshold 2
    """
    import importlib

    from kizuna.cli.startup import loading

    with loading():
        from kizuna.stack.local import LocalStack, StackOptions

        # What every start opens (the service context) and, with one instance, the API this
        # process serves: imported here, with the collector paused, rather than on first use.
        for module in ("kizuna.services.context",
                       *(("uvicorn", "kizuna.api.app") if instances == 1 else ())):
            importlib.import_module(module)

    home = resolve_home(home_dir)
    stack = LocalStack(StackOptions(home=home, api_port=api_port, rpc_port=rpc_port, ipfs=ipfs,
                                    demo=demo, config_file=config_file, instances=instances,
                                    database_url=database_url, proxies=proxies,
                                    threshold=threshold),
                       say=_say, step=_step)
    stop = threading.Event()
    running = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if running:
            stop.set()
        else:  # still starting: unwind (start() stops what it started)
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        info = stack.start()
        running = True
        if json_requested():
            click.echo(json.dumps(info.to_json()))
        else:
            _print_running(info)
        if open_browser:
            _open(info.web_url)
        stack.wait(stop)
        _say("stopping (the chain's state is saved)")
    finally:
        running = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stack.stop()
    _say("stopped")


def _open(url: str) -> None:
    """Open ``url`` in the user's browser; on a machine without one, say where it is."""
    import os
    import sys
    import webbrowser

    # Without a display, webbrowser falls back to a text browser in this very terminal.
    graphical = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    try:
        opened = graphical and webbrowser.open(url, new=2)
    except webbrowser.Error:
        opened = False
    if not opened:
        _say(f"no browser to open here: visit {url}")


def _print_running(info: StackInfo) -> None:
    click.echo()
    click.echo(click.style("Kizuna is running.", bold=True, fg="green")
               + f" Press Ctrl-C to stop; everything is kept in {info.home}.")
    click.echo()
    print_facts({
        "web app": f"{info.web_url}  (open it; connect MetaMask, any account: no gas needed)",
        "Ethereum node": f"{info.rpc_url}  (chain {info.chain_id})",
        "API": info.api_url if len(info.api_urls) < 2 else
        f"{', '.join(info.api_urls)}  ({len(info.api_urls)} instances, each with /health)",
        "API docs": info.docs_url,
        "content store": info.store,
        "database": info.database_url,
        **({"proxy nodes": f"{', '.join(info.proxy_urls)}  ({info.proxy_threshold}-of-"
                           f"{len(info.proxy_urls)}; registry {info.proxy_registry})"}
           if info.proxy_urls else {}),
        "deployment": f"{info.deployment_file}  "
                      f"({'deployed now' if info.deployed_now else 'verified'})",
        "keys": info.keys_dir,
        "configuration": f"{info.config_file}  (see: kizuna config)",
        "logs": info.logs_dir,
    })
    if info.demo is not None:
        click.echo()
        click.echo(click.style("Demo", bold=True)
                   + f" (keys' passphrase: {info.demo.passphrase}; never use these accounts "
                     "on a real chain)")
        print_facts({f"{i.name} ({i.role})": i.address for i in info.demo.identities})
        records = ", ".join(f"{name}: {n}" for name, n in info.demo.records.items())
        click.echo(f"  records     {records}")
        for grant in info.demo.grants:
            click.echo(f"  grant       {grant}")
        click.echo(f"  reads       {info.demo.reads} by dr-tanaka (receipts anchored by the "
                   "API's anchorer)")
    click.echo()
    click.echo(click.style("Next steps", bold=True) + " (in another terminal):")
    home_flag = f" --home {info.home}"
    steps = [
        f"curl {info.api_url}/health",
        f"open {info.docs_url}                      # the API, try it in the browser",
        f"kizuna status{home_flag}",
        f"kizuna down{home_flag}                  # or Ctrl-C here: stops, keeps the data",
        f"kizuna keys list{home_flag}",
    ]
    if info.demo is not None:
        from kizuna.cli.main import COMMANDS
        from kizuna.stack.demo import DEMO_PASSPHRASE

        steps.append(f"export KIZUNA_PASSPHRASE={DEMO_PASSPHRASE}")
        if "patient" in COMMANDS:  # the role commands, when installed
            steps += [
                f"kizuna patient records --key kenji{home_flag}",
                f"kizuna patient grant dr-tanaka Observation:laboratory --days 30 --key kenji"
                f"{home_flag}   # as kenji: share lab results with dr-tanaka for 30 days",
                f"kizuna patient reads --key aiko{home_flag}   # who read aiko's records, when",
            ]
        if "provider" in COMMANDS:
            steps.append(f"kizuna provider records --key dr-tanaka{home_flag}")
        steps.append(f"kizuna keys umbral-key dr-tanaka{home_flag}   # dr-tanaka's registry key")
    else:
        steps += [f"kizuna keys create me{home_flag}",
                  f"kizuna up --demo{home_flag}   # restart with demo patients and providers"]
    for line in steps:
        click.echo(f"  {line}")


@click.command("status")
@click.option("--api-url", default=None,
              help="The API to ask (default: the running `kizuna up` of this home, else "
                   "http://<api_host>:<api_port> from the configuration).")
@home_option
@json_option
def status(api_url: str | None, home_dir: Path | None, as_json: bool) -> None:
    """Check that the Kizuna API answers, and that its chain and store do.

    Asks the API's /health and /version. Exits 0 when all is well, 69 when the API (or the
    chain or store behind it) is unreachable.

    \b
    Example:
      kizuna status
      kizuna status --api-url http://127.0.0.1:8080 --json
    """
    import httpx

    from kizuna.tls import http_client

    home = resolve_home(home_dir)
    holder = home.running_stack()
    url = api_url_for(home, api_url)
    try:
        # /health asks the store about a CID it lacks: a js-ipfs node takes its find timeout
        # (~10 s) to say no, so allow for it.
        with http_client(url, timeout=STATUS_TIMEOUT_S) as client:
            health = client.get(f"{url}/health")
            version = client.get(f"{url}/version")
    except httpx.HTTPError as exc:
        raise NodeUnreachable(f"the Kizuna API at {url} does not answer "
                              f"({exc.__class__.__name__}): is `kizuna up` running?") from None
    if health.status_code != 200:
        detail = _error_message(health)
        raise NodeUnreachable(f"the Kizuna API at {url} is up but unhealthy "
                              f"({health.status_code}): {detail}")
    body = health.json()
    result = {"api_url": url, **body,
              "version": version.json().get("version") if version.status_code == 200 else None,
              "contracts": version.json().get("contracts") if version.status_code == 200
              else None,
              "stack_pid": holder.get("pid")}
    emit(result, human=lambda: print_facts({
        "API": f"{url}  ({body.get('status')})",
        "chain": f"{body.get('chain_id')} at block {body.get('head_block')}",
        "store": body.get("store"),
        "version": result["version"],
        "kizuna up": f"pid {holder['pid']}" if holder.get("pid") else "not running here",
    }))


@click.command("down")
@click.option("--timeout", type=click.FloatRange(1, 600), default=60.0, show_default=True,
              help="Seconds to wait for the stack to stop.")
@home_option
@json_option
def down(timeout: float, home_dir: Path | None, as_json: bool) -> None:
    """Stop the `kizuna up` running on this home (as Ctrl-C in its terminal would).

    Sends SIGTERM to the pid in $KIZUNA_HOME/up.lock and waits until that process has exited
    (the chain's state saved). Exits 3 when no stack runs on this home.

    \b
    Example:
      kizuna down
      kizuna down --home /tmp/kizuna-try
    """
    home = resolve_home(home_dir)
    holder = read_lock(home.lock_file)
    pid = holder.get("pid")
    if not isinstance(pid, int) or not lock_held(home.lock_file):
        raise NotFoundError(f"no `kizuna up` is running on {home.root}")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while lock_held(home.lock_file) or pid_running(pid):
        if time.monotonic() > deadline:
            raise KizunaError(f"`kizuna up` (pid {pid}) did not stop within {timeout:g}s")
        time.sleep(0.2)
    emit({"stopped": pid, "home": home.root},
         human=lambda: click.echo(f"stopped `kizuna up` (pid {pid}) on {home.root}"))


def _error_message(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return answer.text[:200]


__all__ = ["down", "status", "up"]
