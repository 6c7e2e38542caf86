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

*Arrival* can be marked before the caller is ready to ask: :meth:`HeadRounds.ticket`, taken when
a read reaches the service (the API takes it on the event loop, before the read waits for a
worker thread), is the number of rounds sent so far. ``get(ticket)`` then answers from any round
sent after that moment: the last round that answered, or the one in flight, when it was sent
later. Under load, every read that waited in the queue while a round was sent is answered by
that round without a request of its own; the guarantee is the same, counted from when the read
arrived rather than from when a thread took it up.

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
    seq: int = 0
    """Which round this is (1, 2, ...): numbered when it is closed to newcomers, before its
    request is sent."""
    result: T | None = None
    error: BaseException | None = None


class HeadRounds(Generic[T]):
    """Share calls of ``fetch`` between concurrent callers (see the module docstring)."""

    def __init__(self, fetch: Callable[[], T]) -> None:
        self._fetch = fetch
        self._cond = threading.Condition()
        self._running: _Round[T] | None = None
        self._pending: _Round[T] | None = None
        self._numbered = 0  # rounds closed so far: each one's request is sent after this count
        self._answered: _Round[T] | None = None  # the latest round that answered (no error)
        self.requests = 0
        """How many times ``fetch`` was called (for tests and metrics)."""

    def ticket(self) -> int:
        """Mark an arrival: ``get(ticket)`` answers from a request sent after this call.

        A plain read of a counter (atomic under the interpreter lock), so the event loop can
        take one without waiting for the lock the worker threads use."""
        return self._numbered

    def get(self, ticket: int | None = None) -> T:
        """The answer of a ``fetch`` call that started after this call did — or, given a
        :meth:`ticket`, after the ticket was taken."""
        with self._cond:
            if ticket is None:
                ticket = self._numbered
            answered = self._answered
            if answered is not None and answered.seq > ticket:
                return answered.result  # type: ignore[return-value]
            running = self._running
            if running is None:
                mine: _Round[T] = self._number(_Round(may_start=True, led=True))
                lead = True
            elif running.seq > ticket:
                mine, lead = running, False  # sent after this caller arrived: its answer will do
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

    def _number(self, round_: _Round[T]) -> _Round[T]:
        """Close ``round_`` to newcomers and make it the running one (under the lock)."""
        self._numbered += 1
        round_.seq = self._numbered
        self._running = round_
        return round_

    def _run(self, mine: _Round[T]) -> None:
        try:
            self.requests += 1
            mine.result = self._fetch()
        except BaseException as error:  # handed to every member of the round, re-raised there
            mine.error = error
        finally:
            with self._cond:
                if mine.error is None:
                    self._answered = mine
                following = self._pending
                if following is None:
                    self._running = None
                else:
                    self._pending = None  # closed: later callers form the round after it
                    following.may_start = True
                    self._number(following)
                    self._cond.notify_all()
            mine.done.set()


__all__ = ["HeadRounds"]
