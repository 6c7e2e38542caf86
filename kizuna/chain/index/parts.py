"""How a catch-up cuts its block range into parts, and fetches a few parts ahead of storing.

A catch-up is a pipeline: the node serves ``eth_getLogs`` (in its own process, on the other
core) while this process decodes and stores the part that arrived before. That only overlaps if
parts are small enough that more than one is ever in flight, and large enough that the three
requests each part costs (its end block's hash before and after, and its logs) stay cheap next
to its logs. :class:`PartPlanner` sizes them:

* the first part is :data:`FIRST_PART_BLOCKS` blocks (the density of logs is unknown yet);
* then blocks per part = :data:`TARGET_PART_LOGS` ÷ the logs per block of the last part that
  arrived, growing at most :data:`GROWTH` times per part (a sparse stretch says little about the
  next one) and never above ``limit`` (the index's ``chunk_size``);
* no part is larger than 1/:data:`TAIL_PARTS` of what remains: the last part's storing overlaps
  nothing (the first part's fetch neither), so the pipeline's ends are kept short — and a dense
  stretch right before the head, which the density of the blocks before it cannot foretell, is
  still cut fine.

:class:`Prefetcher` runs the fetches on a few worker threads and hands results back in the order
the parts were asked for, so the caller stores them in chain order.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

FIRST_PART_BLOCKS = 8
"""Blocks in a catch-up's first part (and the most a catch-up may hold to be one part)."""

TARGET_PART_LOGS = 800
"""About how many logs a part should hold, once the density of logs is known."""

GROWTH = 4
"""A part is at most this many times the blocks of the one planned before it."""

TAIL_PARTS = 4
"""A part holds at most 1/TAIL_PARTS of the blocks that remain (at least one block). Measured
on the benchmark's chain (a hundred sparse blocks, then thirteen of 800 logs): 4 cost fewer
requests than 8 for the same pipelining (CPU 10.4 vs 10.9 µs a log)."""

IN_FLIGHT = 2
"""Parts being fetched while the main thread stores the one that arrived."""

COMMIT_LOGS = 4_000
"""At most about this many logs in one transaction of a catch-up: parts that arrived while the
one before them was stored join its transaction up to here."""

SPARSE_IN_FLIGHT = 4
"""Parts in flight while they hold few logs (see :attr:`PartPlanner.sparse`): such parts cost
their requests' round trips more than their logs, so more of them overlap."""


@dataclass(frozen=True, slots=True)
class Part:
    """Blocks ``first..last`` (inclusive)."""

    first: int
    last: int

    @property
    def blocks(self) -> int:
        return self.last - self.first + 1


class PartPlanner:
    """Cuts ``start..target`` into consecutive :class:`Part`\\ s sized by the observed density
    of logs (see the module docstring). ``limit``: the most blocks one part may span."""

    def __init__(self, start: int, target: int, *, limit: int,
                 target_logs: int = TARGET_PART_LOGS) -> None:
        if limit < 1 or target_logs < 1:
            raise ValueError("limit and target_logs must be positive")
        self._next = start
        self._target = target
        self._limit = limit
        self._target_logs = target_logs
        self._last_size = 0
        self._density: float | None = None

    @property
    def done(self) -> bool:
        """Every block up to the target is in a planned part."""
        return self._next > self._target

    @property
    def sparse(self) -> bool:
        """The last planned part is expected to hold under 1/8 of :data:`TARGET_PART_LOGS`
        logs (at the density last observed; ``False`` while none is known)."""
        return (self._density is not None
                and self._density * self._last_size < self._target_logs / 8)

    @property
    def in_flight(self) -> int:
        """How many parts to keep in flight now: :data:`SPARSE_IN_FLIGHT` while parts are
        sparse, :data:`IN_FLIGHT` otherwise."""
        return SPARSE_IN_FLIGHT if self.sparse else IN_FLIGHT

    def observe(self, part: Part, logs: int) -> None:
        """A part arrived holding ``logs`` logs: the density the next parts are sized by."""
        self._density = logs / part.blocks

    def next(self) -> Part | None:
        """The next part, or ``None`` once the whole range is planned."""
        if self.done:
            return None
        remaining = self._target - self._next + 1
        if self._last_size == 0:  # the first part: one part if the range is small
            size = remaining if remaining <= FIRST_PART_BLOCKS else FIRST_PART_BLOCKS
        else:
            if self._density is None:  # nothing arrived yet: as small as the first
                wanted = self._last_size
            elif self._density == 0:
                wanted = self._limit
            else:
                wanted = max(1, int(self._target_logs / self._density))
            size = min(wanted, self._last_size * GROWTH, -(-remaining // TAIL_PARTS))
        size = max(1, min(size, self._limit, remaining))
        part = Part(self._next, self._next + size - 1)
        self._next = part.last + 1
        self._last_size = size
        return part


T = TypeVar("T")
J = TypeVar("J")


class Prefetcher(Generic[J, T]):
    """Runs ``fetch(job)`` on ``workers`` threads; :meth:`next` returns results in the order the
    jobs were submitted (re-raising a job's exception). ``on_thread_exit`` runs on each worker
    thread as it ends (to close that thread's connection). Use as a context manager: leaving
    cancels the jobs not yet started and waits for the workers."""

    def __init__(self, fetch: Callable[[J], T], *, workers: int,
                 on_thread_exit: Callable[[], None] | None = None) -> None:
        self._fetch = fetch
        self._on_exit = on_thread_exit
        self._jobs: queue.SimpleQueue[tuple[J, Future[T]] | None] = queue.SimpleQueue()
        self._order: deque[Future[T]] = deque()
        self._threads = [threading.Thread(target=self._work, name=f"index-fetch-{i}",
                                          daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        try:
            while (item := self._jobs.get()) is not None:
                job, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = self._fetch(job)
                except BaseException as error:  # handed to the caller by next()
                    future.set_exception(error)
                else:
                    future.set_result(result)
        finally:
            if self._on_exit is not None:
                self._on_exit()

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet taken by :meth:`next`."""
        return len(self._order)

    @property
    def ready(self) -> bool:
        """The oldest job not yet taken has succeeded (:meth:`next` returns at once). A failed
        job is never ready: the caller stores what came before it first."""
        if not self._order or not self._order[0].done():
            return False
        return not self._order[0].cancelled() and self._order[0].exception() is None

    def submit(self, job: J) -> None:
        future: Future[T] = Future()
        self._order.append(future)
        self._jobs.put((job, future))

    def next(self) -> T:
        """The result of the oldest job not yet taken (waits for it)."""
        return self._order.popleft().result()

    def close(self) -> None:
        for future in self._order:
            future.cancel()
        self._order.clear()
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> Prefetcher[J, T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["COMMIT_LOGS", "FIRST_PART_BLOCKS", "GROWTH", "IN_FLIGHT", "SPARSE_IN_FLIGHT",
           "TAIL_PARTS", "TARGET_PART_LOGS", "Part", "PartPlanner", "Prefetcher"]
