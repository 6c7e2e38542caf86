"""The start of every command (its module, imported by kizuna.cli.main), of the server
commands (``kizuna serve``, ``kizuna proxy serve``, ``kizuna up``) and of the participants'
sessions (kizuna.cli.participant: the key's unlocking, the client, web3; the auditor's):
their imports run with the cyclic garbage collector paused.

Importing web3, FastAPI, SQLAlchemy, pydantic and the service makes ~220,000 objects that live
as long as the process and frees almost none: the collector, run every 700 allocations, walks
them again and again for nothing (~0.15 CPU-s of a server's ~1 s of imports). Reference
counting still frees everything that is not in a cycle meanwhile. Afterwards the objects the
imports made are frozen (moved out of the generations the collector walks: it never walks them
again while the server runs) and the collector runs as before for everything made later."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading() -> Iterator[None]:
    """Run the block (a server's imports) with the collector paused; then freeze what exists
    and resume it, however the block ends. Nested or with the collector already paused by the
    caller, it leaves the collector as it found it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


__all__ = ["loading"]
