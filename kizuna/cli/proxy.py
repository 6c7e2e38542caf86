"""``kizuna proxy serve``: run one threshold proxy node (docs/proxies.md) — its own database,
event index and Ethereum key, the chain through its own RPC, serving the read route only.

Configuration as for every command (``KIZUNA_*`` variables > ``--config`` file > the home's
paths > defaults); a node sets at least its own ``--database`` and ``--index`` (never the
service's) and its key (``KIZUNA_NODE_KEY``, hex, or ``--key-file``).

The participants' commands find the deployment's proxy set with :func:`proxy_set_for`: the
ProxyRegistry named by the ``proxy_registry`` setting (``KIZUNA_PROXY_REGISTRY`` or the config
file; with ``KIZUNA_PROXY_THRESHOLD``, default 2 of 3 or more), else the one ``kizuna up
--proxies`` keeps in ``$KIZUNA_HOME/proxies/registry.json`` while its nodes run. Without
either, grants and reads take the service's 1-of-1 path."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kizuna.cli.options import home_option, resolve_home
from kizuna.cli.output import Column, ExitCode, emit, json_option, print_facts, print_table

if TYPE_CHECKING:
    from kizuna.cli.participant import Session
    from kizuna.client.threshold import ProxySet
    from kizuna.config import Settings
    from kizuna.services.audit.history import ChainHistory

REGISTRY_FILE = Path("proxies") / "registry.json"
"""Under the home: the ProxyRegistry ``kizuna up --proxies`` deployed, its chain and the
threshold; ``"serving"`` while the nodes run (kizuna.stack.proxies)."""


def proxy_set_for(session: Session) -> ProxySet | None:
    """The deployment's proxy set for a participant's command, or ``None`` (1-of-1)."""
    from kizuna.client.threshold import ProxySet
    from kizuna.errors import ConfigError
    from kizuna.types import checked_address

    # The proxy_registry setting (KIZUNA_PROXY_REGISTRY or the config file), as the API has it.
    registry = session.settings.proxy_registry or ""
    threshold_text = os.environ.get("KIZUNA_PROXY_THRESHOLD", "").strip()
    threshold: int | None = None
    if not registry:
        saved = session.home.root / REGISTRY_FILE
        if not saved.is_file():
            return None
        data = json.loads(saved.read_text(encoding="utf-8"))
        if data.get("chainId") != session.chain.chain_id or not data.get("serving"):
            return None
        registry = str(data["address"])
        threshold = int(data["threshold"]) if data.get("threshold") else None
    if threshold_text:
        try:
            threshold = int(threshold_text)
        except ValueError:
            raise ConfigError(f"KIZUNA_PROXY_THRESHOLD is not a number: {threshold_text!r}"
                              ) from None
    address = checked_address("KIZUNA_PROXY_REGISTRY", registry)
    return ProxySet.from_registry(session.chain, address, threshold=threshold)


@click.group()
def proxy() -> None:
    """Threshold proxy nodes (m-of-n re-encryption; docs/proxies.md)."""


@proxy.command()
@home_option
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="a TOML or dotenv file of settings (environment variables win)")
@click.option("--database", "database_url", required=True,
              help="this node's own database URL (sqlite:///path or postgresql://...)")
@click.option("--index", "index_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="this node's own event-index file")
@click.option("--key-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="a file holding this node's Ethereum private key, hex (else KIZUNA_NODE_KEY)")
@click.option("--host", default="127.0.0.1", show_default=True, help="listen address")
@click.option("--port", type=int, default=8801, show_default=True, help="listen port")
@click.option("--allow-origin", "allow_origins", multiple=True, metavar="ORIGIN",
              envvar="KIZUNA_NODE_ALLOW_ORIGINS",
              help="a web page's origin (https://kizuna.example) that may read through this "
                   "node from the browser (CORS); repeat, or list them in "
                   "KIZUNA_NODE_ALLOW_ORIGINS separated by spaces. None: browsers may not")
@click.option("--log-level", default="warning",
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(home_dir: Path | None, config_file: Path | None, database_url: str, index_path: Path,
          key_file: Path | None, host: str, port: int, allow_origins: tuple[str, ...],
          log_level: str) -> None:
    """Serve one proxy node until interrupted: POST /node/kfrags, /node/records, /node/reads."""
    from kizuna.cli.startup import loading

    with loading():
        import uvicorn
        from eth_account import Account

        from kizuna.chain.signers import LocalKeySigner
        from kizuna.errors import ConfigError
        from kizuna.proxynode.server import create_node_app
        from kizuna.services.context import close_context, open_context
        from kizuna.stack.home import load_settings

    raw = (key_file.read_text(encoding="utf-8").strip() if key_file is not None
           else os.environ.get("KIZUNA_NODE_KEY", "").strip())
    if not raw:
        raise ConfigError("the node's Ethereum key: give --key-file or set KIZUNA_NODE_KEY")
    try:
        node = Account.from_key(raw).address
    except ValueError:
        raise ConfigError("the node key is not a 32-byte hex private key") from None
    home = resolve_home(home_dir).ensure()
    # sessions=False: a node signs no one in (the provider's signed request is the read's
    # authentication), so it needs no KIZUNA_SESSION_SECRET.
    settings = load_settings(home, config_file=config_file, database_url=database_url,
                             index_path=index_path, sessions=False)
    ctx = open_context(settings)
    try:
        click.echo(f"kizuna proxy node {node} on http://{host}:{port} (chain "
                   f"{settings.rpc_url}, database {database_url.split('@')[-1]})", err=True)
        app = create_node_app(ctx, node=node, follow_interval_s=settings.follow_interval_s,
                              anchor_signer=LocalKeySigner(raw),
                              anchor_interval_s=settings.anchor_interval_s,
                              allow_origins=allow_origins)
        # No access log: a line per read is CPU the read path does not need (as `kizuna serve`).
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        close_context(ctx)


def _history(settings: Settings) -> ChainHistory:
    """The chain's history, with the batches' records where this home's service stored their
    manifests (each trusted only when it rebuilds to the on-chain root)."""
    from kizuna.cli.participant import connect_chain
    from kizuna.db.engine import Database
    from kizuna.services.audit import service_history
    from kizuna.storage.store import open_store

    store = open_store(settings.store_config())
    db = Database.open(settings.database_url)
    try:
        return service_history(connect_chain(settings), db, store, from_chain=True)
    finally:
        store.close()
        db.dispose()


def _home_nodes(home_root: Path) -> dict[str, str]:
    """The proxy nodes ``kizuna up --proxies`` runs in this home: address → database URL."""
    from eth_account import Account

    found: dict[str, str] = {}
    for directory in sorted((home_root / "proxies").glob("[0-9]*"), key=lambda d: int(d.name)):
        key, db = directory / "node.key", directory / "node.sqlite3"
        if key.is_file() and db.is_file():
            found[Account.from_key(key.read_text().strip()).address] = f"sqlite:///{db}"
    return found


@click.command("threshold")
@home_option
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="a TOML or dotenv file of settings (environment variables win)")
@click.option("--node", "nodes", multiple=True, metavar="ADDRESS=DATABASE_URL",
              help="a proxy node and its own database (repeat; default: the nodes `kizuna up "
                   "--proxies` runs in this home)")
@click.option("--threshold", type=click.IntRange(1, 255), default=None,
              help="m: nodes each read needs (default: the home's proxy set's)")
@json_option
def audit_threshold(home_dir: Path | None, config_file: Path | None, nodes: tuple[str, ...],
                    threshold: int | None, as_json: bool) -> None:
    """Check every threshold read: served by at least m proxy nodes, each with a live grant at
    the head it decided at. Flags a read a node served alone, one served by fewer than m
    nodes, and each node that served without a live grant (after a revoke, say). Reads each
    node's own receipts (its database) and the chain's history; exits 1 on any finding.

    \b
    Examples:
      kizuna audit threshold
      kizuna audit threshold --node 0xAb...=postgresql://audit@node-a/kizuna --threshold 2
    """
    from kizuna.errors import ConfigError, InputError
    from kizuna.services.audit.threshold import verify_node_databases
    from kizuna.stack.home import load_settings
    from kizuna.types import checked_address

    home = resolve_home(home_dir)
    settings = load_settings(home, config_file=config_file, environment="development")
    databases: dict[str, str] = {}
    for given in nodes:
        address, sep, url = given.partition("=")
        if not sep or not url:
            raise InputError("node", f"{given!r} is not ADDRESS=DATABASE_URL")
        databases[checked_address("node", address)] = url
    if not databases:
        databases = _home_nodes(home.root)
    if not databases:
        raise ConfigError("no proxy nodes: give --node ADDRESS=DATABASE_URL, or run this in a "
                          "home where `kizuna up --proxies` runs nodes")
    if threshold is None:
        saved = home.root / REGISTRY_FILE
        threshold = (int(json.loads(saved.read_text(encoding="utf-8")).get("threshold") or 0)
                     if saved.is_file() else 0)
        if not threshold:
            raise ConfigError("the threshold m: give --threshold")
    report = verify_node_databases(_history(settings), databases, threshold=threshold)
    failures = [{"check": f.check, "subject": f.subject, "reason": f.reason}
                for f in report.failures]
    result = {"ok": report.ok, "threshold": threshold, "nodes": sorted(databases),
              "checked": report.checked, "passed": report.passed, "failures": failures,
              "counts": dict(report.counts)}

    def human() -> None:
        print_facts({"reads checked": report.checked, "passed": report.passed,
                     "nodes": len(databases), "threshold": threshold},
                    title="Threshold audit " + ("passed" if report.ok else "FAILED"))
        if report.failures:
            print_table(failures, [Column("check", "Failed check", "red"),
                                             Column("subject", "Read"),
                                             Column("reason", "Why")])

    emit(result, human=human)
    if not report.ok:
        click.echo(f"kizuna: threshold audit failed: {len(report.failures)} finding(s)",
                   err=True)
        raise SystemExit(int(ExitCode.ERROR))
