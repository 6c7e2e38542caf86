"""Cluster leadership: the index follower and the receipt anchorer run once per cluster.

Every API instance of one database (``kizuna serve`` several times, ``kizuna up --instances N``)
used to run its own follower and anchorer. Both are safe to run twice -- the anchorer assigns
batches in one write transaction and recognises a root the chain already holds, the follower's
deletes are idempotent -- but N of them make N times the chain calls and race for the same
batches. Now each instance runs a :class:`ClusterLeader` that takes part in an election every
``interval_s`` seconds; only the winner runs the duties (follower, anchorer), and when it dies
another instance takes over within one interval.

The election is a lock that dies with its holder:

* **PostgreSQL** (:class:`PostgresElection`): a session-level ``pg_try_advisory_lock`` on a
  dedicated connection, held for as long as the instance leads. A killed leader's connection
  closes (TCP keepalives catch a silent network loss too), the server frees the lock, and the
  next instance to try wins. The leading connection is named ``kizuna-leader pid=<pid>
  host=<host>`` in ``pg_stat_activity``, so ``SELECT application_name FROM pg_stat_activity``
  says who leads.
* **SQLite file** (:class:`FileElection`): an ``flock`` of ``<database>-leader`` beside the
  file, as the writers' lock (:mod:`kizuna.locks`); the kernel frees it when the process dies.
  The holder writes its pid into the file. Instances on one file are on one machine, so one
  of them leads; a single instance always leads.
* **in-memory SQLite** (:class:`SoleInstance`): one process, always the leader.

Reads never depend on the leader: every instance syncs its own event index to the chain head
on demand (``FreshIndex.head`` on each access check), so a follower instance serves reads as
before; the leader's follower is what deletes the key fragments of grants revoked elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from kizuna.background import PeriodicTask
from kizuna.db import Database

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"kizuna:cluster-leader").digest()[:8], "big",
                                 signed=True)
"""The advisory-lock key of the leadership (one per PostgreSQL database)."""


class Election(Protocol):
    """A lock that at most one instance holds, freed when its holder dies."""

    def try_lead(self) -> bool:
        """True while this instance holds the lock (taking it if it is free)."""
        ...

    def resign(self) -> None:
        """Give the lock up (a clean stop)."""
        ...


class SoleInstance:
    """An in-memory database has one instance: it always leads."""

    def try_lead(self) -> bool:
        return True

    def resign(self) -> None:
        return None


class FileElection:
    """An ``flock`` of ``path`` (non-blocking), held while leading; the holder's pid inside."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_lead(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return True

    def resign(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the only descriptor releases the flock


class PostgresElection:
    """``pg_try_advisory_lock(key)`` on a connection of its own, kept open while leading.

    The connection is checked on every try: if it is gone (the server restarted, the network
    dropped it), this instance no longer leads -- the server freed the lock when the session
    ended -- and it stands again on a new connection."""

    def __init__(self, url: str, *, key: int = LEADER_LOCK_KEY, connect_timeout_s: int = 5
                 ) -> None:
        self.url = url
        self.key = key
        self.connect_timeout_s = connect_timeout_s
        self._conn: Any = None
        self._leading = False

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            self.url, autocommit=True, connect_timeout=self.connect_timeout_s,
            application_name=f"kizuna-leader pid={os.getpid()} host={socket.gethostname()}"[:63],
            # A leader cut off without a FIN (a pulled cable, a frozen VM) is noticed by the
            # server within ~20 s and its lock freed.
            keepalives=1, keepalives_idle=10, keepalives_interval=3, keepalives_count=3)

    def try_lead(self) -> bool:
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn, self._leading = self._connect(), False
            if self._leading:
                self._conn.execute("SELECT 1")  # the session, hence the lock, is still ours
                return True
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            self._leading = bool(row is not None and row[0])
            return self._leading
        except psycopg.Error as error:
            log.warning("leader election: the database does not answer (%s): not leading",
                        error.__class__.__name__)
            self._drop()
            return False

    def _drop(self) -> None:
        import psycopg

        conn, self._conn, self._leading = self._conn, None, False
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # a broken connection is gone anyway
                conn.close()

    def resign(self) -> None:
        self._drop()  # ending the session releases its advisory locks


def election_for(db: Database) -> Election:
    """The election of the instances sharing ``db``."""
    if db.dialect == "postgresql":
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresElection(url)
    if db.sqlite_file is not None:
        return FileElection(Path(f"{db.sqlite_file}-leader"))
    return SoleInstance()


class ClusterLeader(PeriodicTask):
    """Stands for election every ``interval_s``; runs ``duties`` while it leads, stops them
    when it loses (the database went away) and on :meth:`stop`."""

    thread_name = "kizuna-leader"

    def __init__(self, election: Election, duties: Sequence[PeriodicTask], *,
                 interval_s: float) -> None:
        super().__init__(interval_s=interval_s)
        self.election = election
        self.duties = tuple(duties)
        self.leading = False

    def _pass(self) -> None:
        leading = self.election.try_lead()
        if leading and not self.leading:
            log.info("leading the cluster: running %s",
                     ", ".join(d.thread_name for d in self.duties))
            for duty in self.duties:
                duty.start()  # its first pass runs at once
        elif self.leading and not leading:
            log.warning("no longer leading the cluster: stopping %s",
                        ", ".join(d.thread_name for d in self.duties))
            self._stop_duties()
        self.leading = leading

    def _stop_duties(self) -> None:
        for duty in reversed(self.duties):
            duty.stop()

    def stop(self, timeout: float | None = 30.0) -> None:
        super().stop(timeout)
        self._stop_duties()
        self.leading = False
        self.election.resign()


__all__ = ["LEADER_LOCK_KEY", "ClusterLeader", "Election", "FileElection", "PostgresElection",
           "SoleInstance", "election_for"]
