"""Periodic work on a background thread: the receipt anchorer, the index follower, the sweeps.

A :class:`PeriodicTask` runs one pass every ``interval_s`` seconds on a daemon thread until
:meth:`~PeriodicTask.stop`. A pass that fails with a :class:`~kizuna.errors.KizunaError` (the
node or the database is away) is logged and kept in ``last_error``; the next pass tries again.
Anything else is a bug and ends the thread loudly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Self

from kizuna.errors import KizunaError

log = logging.getLogger(__name__)


class PeriodicTask:
    """Subclasses implement :meth:`_pass` (one unit of work) and name their thread."""

    thread_name = "kizuna-task"

    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s
        self.last_error: KizunaError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pass(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Start the background thread (no-op while it runs)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._pass()
                self.last_error = None
            except KizunaError as error:
                self.last_error = error
                log.warning("%s: pass failed, retrying in %.0f s: %s",
                            self.thread_name, self.interval_s, error)
            self._stop.wait(self.interval_s)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the thread to stop and wait for it (up to ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Sweep(PeriodicTask):
    """``sweep()`` (it answers how many things it removed) every ``interval_s`` seconds: the
    service's sweeps of what was left behind (staged envelopes, upload sessions)."""

    def __init__(self, sweep: Callable[[], int], *, name: str, interval_s: float) -> None:
        super().__init__(interval_s=interval_s)
        self.thread_name = name
        self._sweep = sweep
        self.last_swept = 0

    def _pass(self) -> None:
        self.last_swept = self._sweep()


def sweep_interval(ttl_s: float) -> float:
    """How often to sweep what expires after ``ttl_s``: four times a TTL, at least hourly."""
    return min(ttl_s / 4, 3600.0)


__all__ = ["PeriodicTask", "Sweep", "sweep_interval"]
