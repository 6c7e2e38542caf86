"""``ReadWorkers``: the threads that serve provider reads off the event loop.

A read is CPU work between short waits (the node's head, the database), so it runs on a worker
thread while the event loop keeps accepting requests. ``loop.run_in_executor`` does that through
a ``concurrent.futures.Future`` chained to an asyncio future (a condition variable, callbacks and
a state copy on each side), a noticeable share of a read that costs about a millisecond. Here a
job is one entry in a ``SimpleQueue`` (C, lock-free for the producer), and the answer goes back
with one ``call_soon_threadsafe``.

Two threads by default (``read_threads``): one computes while the other waits on the node or the
database; beyond two, threads only contend for the interpreter lock (benchmarks/RESULTS.md has
the measurement).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if not future.cancelled():  # the client went away: the answer has no one to go to
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(error)


class ReadWorkers:
    """``threads`` daemon threads taking jobs in arrival order (see the module docstring)."""

    def __init__(self, threads: int, *, name: str = "kizuna-read") -> None:
        if threads < 1:
            raise ValueError("at least one read thread is needed")
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(threads)]
        self._closed = False
        self._started = False
        self._start_lock = threading.Lock()

    def _start(self) -> None:
        with self._start_lock:  # started with the first job: an app never served stays idle
            if not self._started:
                for thread in self._threads:
                    thread.start()
                self._started = True

    @property
    def size(self) -> int:
        return len(self._threads)

    async def run(self, job: Callable[[], T]) -> T:
        """``job()`` on a worker thread; its result (or exception) here."""
        if self._closed:
            raise RuntimeError("the read workers are shut down")
        if not self._started:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((job, loop, future))
        return await future

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, loop, future = item
            try:
                result = job()
            except BaseException as error:  # handed to the awaiting request, raised there
                self._answer(loop, _fail, future, error)
            else:
                self._answer(loop, _resolve, future, result)

    @staticmethod
    def _answer(loop: asyncio.AbstractEventLoop, how: Callable[..., None],
                future: asyncio.Future[Any], value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the app stopped meanwhile
            loop.call_soon_threadsafe(how, future, value)

    def shutdown(self) -> None:
        """Let the queued jobs finish, then stop the threads."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()


__all__ = ["ReadWorkers"]
