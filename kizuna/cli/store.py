"""``kizuna store``: the content store. ``kizuna store gc`` deletes the blocks no pinned
envelope reaches (refused or failed uploads), as the service does every
``store_gc_interval_s``, and prints what it freed."""

from __future__ import annotations

from pathlib import Path

import click

from kizuna.cli.options import home_option, resolve_home
from kizuna.cli.output import emit, json_option, print_facts


@click.group("store")
def store() -> None:
    """The content store (KIZUNA_STORE: embedded, or an IPFS node)."""


@store.command("gc")
@home_option
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="a TOML or dotenv file of settings (environment variables win)")
@click.option("--grace", "grace_s", type=click.FloatRange(min=0), default=None,
              help="spare unpinned blocks written or reused in the last SECONDS (default: "
                   "store_gc_grace_s, 3600); 0 only when no upload is in flight")
@json_option
def gc(home_dir: Path | None, config_file: Path | None, grace_s: float | None,
       as_json: bool) -> None:
    """Delete the blocks no pinned envelope reaches; print what was freed.

    Safe while the service runs on the same store: puts wait for the store's lock, and a
    block written or reused within the grace period is kept (a refused upload unpins an
    envelope a concurrent upload of the same bytes may still pin). An IPFS node collects
    its own blocks (`ipfs repo gc`, or the daemon's --enable-gc): nothing is deleted there.

    \b
    Example:
      kizuna store gc             # what the service's periodic gc would do now
      kizuna store gc --json
    """
    from kizuna.stack.home import load_settings
    from kizuna.storage.gc import NODE_COLLECTS, collect
    from kizuna.storage.store import open_store

    home = resolve_home(home_dir).ensure()
    settings = load_settings(home, config_file=config_file)
    grace = settings.store_gc_grace_s if grace_s is None else grace_s
    opened = open_store(settings.store_config())
    try:
        result = collect(opened, grace_s=grace)
    finally:
        opened.close()
    if result is None:
        note = {"store": settings.store, "collected": False, "note": NODE_COLLECTS}
        emit(note, human=lambda: click.echo(f"nothing to do: {NODE_COLLECTS}"))
        return
    facts = {"store": str(settings.store_path), "collected": True,
             "blocks_removed": result.blocks_removed, "bytes_freed": result.bytes_freed,
             "blocks_kept": result.blocks_kept, "blocks_spared": result.blocks_spared,
             "grace_s": grace}
    emit(facts, human=lambda: print_facts({
        "store": facts["store"],
        "removed": f"{result.blocks_removed} blocks, {result.bytes_freed} bytes freed",
        "kept": f"{result.blocks_kept} blocks reachable from pins",
        "spared": f"{result.blocks_spared} unpinned blocks younger than {grace:g} s",
    }, title="Store garbage collection"))
