"""``HeadRounds``: concurrent access checks share one "latest block" request, never an old one.

Every read is decided at the chain head, so every read asks the node for its latest block. With
many reads in flight, those requests are the same question asked over and over: a node answers
each (CPU on both sides, and a metered request on a hosted node). ``HeadRounds`` groups them in
*rounds*: while one request is on its way, every caller that arrives joins the next round, and
that round sends one request for all of them as soon as the current one has answered.

The rule that keeps decisions fresh: a caller only ever gets the answer of a request *sent after
it arrived*. A round's request is sent after all its members joined (members join while the
previous round is still running; the round is closed to newcomers the moment it may start). So
a revocation mined before a read arrived is always seen by that read — the same guarantee as a
request of its own, for one request per round instead of one per read.

A caller alone (no request in flight) sends its request at once; a caller that arrives while one
is in flight waits for at most the rest of that request and then its own round's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(eq=False)
class _Round(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    may_start: bool = False
    led: bool = False
    result: T | None = None
    error: BaseException | None = None


class HeadRounds(Generic[T]):
    """Share calls of ``fetch`` between concurrent callers (see the module docstring)."""

    def __init__(self, fetch: Callable[[], T]) -> None:
        self._fetch = fetch
        self._cond = threading.Condition()
        self._running = False
        self._pending: _Round[T] | None = None
        self.requests = 0
        """How many times ``fetch`` was called (for tests and metrics)."""

    def get(self) -> T:
        """The answer of a ``fetch`` call that started after this call did."""
        with self._cond:
            if not self._running:
                self._running = True
                mine: _Round[T] = _Round(may_start=True, led=True)
                lead = True
            else:
                if self._pending is None:
                    self._pending = _Round()
                mine = self._pending
                while not mine.may_start:
                    self._cond.wait()
                lead = not mine.led
                mine.led = True
        if lead:
            self._run(mine)
        else:
            mine.done.wait()
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    def _run(self, mine: _Round[T]) -> None:
        try:
            self.requests += 1
            mine.result = self._fetch()
        except BaseException as error:  # handed to every member of the round, re-raised there
            mine.error = error
        finally:
            mine.done.set()
            with self._cond:
                following = self._pending
                if following is None:
                    self._running = False
                else:
                    self._pending = None  # closed: later callers form the round after it
                    following.may_start = True
                    self._cond.notify_all()


__all__ = ["HeadRounds"]
