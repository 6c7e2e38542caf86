"""``WriterLock``: writers of one SQLite file (the service database, the event index) take
turns without sleeping.

SQLite allows one writer at a time. A writer that finds the file locked is handled by SQLite's
busy handler, which *sleeps* and retries (1, 2, 5, 10 … up to 100 ms a try): with two service
instances writing a receipt per read, those sleeps left each process idle half the time and made
the slowest reads hundreds of milliseconds.

Writers queue here instead, before ``BEGIN IMMEDIATE``, and are woken the moment the lock is
free: the threads of one process on a re-entrant lock, the processes on an ``flock`` of a
``<database>-writelock`` file beside the database (the kernel wakes the waiter at once, and the
lock dies with its process, so a crash never leaves it held). SQLite's busy timeout stays as the
guard against writers that do not take this lock (another program, an old Kizuna).
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType


class WriterLock:
    """Re-entrant in a thread; exclusive between threads, and between processes when ``path``
    is given (an ``flock`` on that file, taken by the outermost acquire only)."""

    def __init__(self, path: Path | None = None) -> None:
        self._threads = threading.RLock()
        self._path = path
        self._fd: int | None = None
        self._depth = 0  # only changed by the thread holding ``_threads``

    @classmethod
    def beside(cls, file: str | Path | None) -> WriterLock:
        """The lock of the writers of ``file``, on ``<file>-writelock``; threads only when
        there is no file (an in-memory database)."""
        return cls(Path(f"{file}-writelock") if file else None)

    def __enter__(self) -> WriterLock:
        self._threads.acquire()
        try:
            if self._depth == 0 and self._path is not None:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits without the GIL
        except BaseException:
            self._threads.release()
            raise
        self._depth += 1
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        """Close the lock file (the database is being disposed of)."""
        with self._threads:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


__all__ = ["WriterLock"]
