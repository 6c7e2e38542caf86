"""``Driver``: the few statements every provider read runs, sent through the DB-API directly.

A read looks up the caller's session, reads the grant's key fragments and commits a receipt.
Through SQLAlchemy Core each of those costs ~80 µs of CPU (compiled-statement cache look-up,
result-proxy set-up, the pool's checkout and reset events) around a statement SQLite runs in a
few microseconds, a large share of a read's CPU. Here the same statements go to the driver's
connection as plain SQL:

* **SQLite file** (the default): one connection per thread, opened with the engine's pragmas
  (WAL, ``synchronous=NORMAL``, busy timeout), kept for the life of the thread; reads are single
  statements (their own snapshot, no transaction needed); writes queue on the database's
  :class:`~kizuna.locks.WriterLock` and run in ``BEGIN IMMEDIATE`` … ``COMMIT``, exactly like
  :meth:`Database.write <kizuna.db.engine.Database.write>`.
* **PostgreSQL** and in-memory SQLite: a connection from the engine's pool (``raw_connection``),
  committed or rolled back at the end, returned to the pool.

SQL is written once with ``?`` placeholders (what sqlite3 takes) and turned into ``%s`` for
psycopg. Errors are Kizuna's: a connection or lock failure is :class:`DatabaseUnavailable` (503),
a UNIQUE / primary-key violation is :class:`DuplicateKey` for the caller to name (e.g. a
replayed read request).

Everything else — schema, migrations, the many statements that are not on the read path — stays
in SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

from kizuna.errors import ConflictError, DatabaseUnavailable

if TYPE_CHECKING:
    from kizuna.db.engine import Database


class DuplicateKey(ConflictError):
    """A write hit a UNIQUE or primary-key constraint (the row exists already)."""


class Cursor(Protocol):
    """What a write transaction hands out (a DB-API cursor)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Driver:
    """Plain DB-API access to ``db`` for hot statements (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._postgres = db.dialect == "postgresql"
        self._file = None if self._postgres or db.memory else db.sqlite_file
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        self._generation = 0
        self._sql: dict[str, str] = {}
        if self._postgres:
            import psycopg

            self._unavailable: tuple[type[BaseException], ...] = (psycopg.OperationalError,
                                                                  psycopg.InterfaceError)
            self._integrity: type[BaseException] = psycopg.IntegrityError
        else:
            self._unavailable = (sqlite3.OperationalError, sqlite3.InterfaceError)
            self._integrity = sqlite3.IntegrityError
        self._mapped = (self._integrity, *self._unavailable)
        """The driver's errors that :meth:`_known` names."""

    # -- statements ---------------------------------------------------------------------------

    def rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """All rows of one query (its own consistent snapshot)."""
        if self._file is not None:
            # The read path's queries on a SQLite file (a session, key fragments): this
            # thread's connection, no lock, no generator context (~5 us a query).
            try:
                return self._thread_connection().execute(sql, params).fetchall()
            except self._mapped as error:
                raise self._known(error) from None
        with self._connection(write=False) as conn:
            cursor = conn.cursor()
            try:
                cursor.execute(self._dialect_sql(sql), params)
                return list(cursor.fetchall())
            finally:
                cursor.close()

    def first(self, sql: str, params: Sequence[Any]) -> Any | None:
        """The first row of one query, ``None`` when there is none."""
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        """A write transaction: committed when the block ends, rolled back when it raises."""
        with self._connection(write=True) as conn:
            cursor = conn.cursor()
            adapted = _AdaptingCursor(cursor, self._dialect_sql)
            try:
                if not self._postgres:
                    cursor.execute("BEGIN IMMEDIATE")
                yield adapted
            except BaseException:
                self._rollback(conn)
                raise
            else:
                if self._postgres:
                    conn.commit()
                else:
                    cursor.execute("COMMIT")
            finally:
                cursor.close()

    def insert(self, sql: str, params: Sequence[Any]) -> Any | None:
        """One ``INSERT … RETURNING`` as its own transaction, committed when this returns; its
        first returned row. On a SQLite file the statement runs in autocommit mode: SQLite
        commits it as it completes (the rows are read to the end here), without the
        ``BEGIN IMMEDIATE`` and ``COMMIT`` round trips of :meth:`write` (~11 µs, and two
        hand-overs of the interpreter lock, on every read's receipt). Elsewhere, :meth:`write`."""
        if self._file is None:
            with self.write() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()
        lock = self._db.write_lock
        assert lock is not None  # a SQLite file's writers queue on it
        with lock:
            try:
                # to the statement's end (fetchall): then it has committed
                rows = self._thread_connection().execute(sql, params).fetchall()
            except self._mapped as error:
                raise self._known(error) from None
        return rows[0] if rows else None

    def _rollback(self, conn: Any) -> None:
        try:
            if self._postgres:
                conn.rollback()
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
        except self._unavailable:
            pass  # the connection is gone: the transaction died with it

    def _is_duplicate(self, error: BaseException) -> bool:
        if self._postgres:
            import psycopg

            return isinstance(error, psycopg.errors.UniqueViolation)
        return getattr(error, "sqlite_errorname", "") in ("SQLITE_CONSTRAINT_UNIQUE",
                                                          "SQLITE_CONSTRAINT_PRIMARYKEY")

    def _dialect_sql(self, sql: str) -> str:
        if not self._postgres:
            return sql
        adapted = self._sql.get(sql)
        if adapted is None:
            adapted = self._sql[sql] = sql.replace("?", "%s")
        return adapted

    # -- connections --------------------------------------------------------------------------

    @contextmanager
    def _connection(self, *, write: bool) -> Iterator[Any]:
        lock = self._db.write_lock if (write or self._db.memory) else None
        try:
            with lock or nullcontext():
                if self._file is not None:
                    yield self._thread_connection()
                    return
                conn = self._db.engine.raw_connection()
                try:
                    yield conn
                    if not write and self._postgres:
                        conn.commit()  # end the read's implicit transaction
                finally:
                    conn.close()  # back to the pool
        except self._mapped as error:
            raise self._known(error) from None

    def _known(self, error: BaseException) -> BaseException:
        """What the driver raises for ``error``: :class:`DuplicateKey` for a UNIQUE or
        primary-key violation, :class:`DatabaseUnavailable` for a connection or lock failure,
        anything else (NOT NULL, CHECK, a foreign key: a bug, not a conflict) as it is."""
        if isinstance(error, self._integrity):
            return DuplicateKey(str(error)) if self._is_duplicate(error) else error
        if isinstance(error, self._unavailable):
            return DatabaseUnavailable(f"the database {self._db.safe_url()} is unavailable: "
                                       f"{error}")
        return error

    def _thread_connection(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.generation == self._generation:
            return conn
        from kizuna.db.engine import BUSY_TIMEOUT_MS, configure_sqlite

        assert self._file is not None
        conn = sqlite3.connect(self._file, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
        configure_sqlite(conn)
        with self._opened_lock:
            self._opened.append(conn)
        local.conn, local.generation = conn, self._generation
        return conn

    def close(self) -> None:
        """Close the per-thread connections (the database is being disposed of); a thread
        that uses the driver afterwards opens a fresh one."""
        with self._opened_lock:
            self._generation += 1
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()


class _AdaptingCursor:
    """A cursor whose SQL is written with ``?`` placeholders whatever the driver."""

    __slots__ = ("_adapt", "_cursor")

    def __init__(self, cursor: Any, adapt: Any) -> None:
        self._cursor = cursor
        self._adapt = adapt

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Any:
        return self._cursor.execute(self._adapt(sql), params)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())


__all__ = ["Cursor", "Driver", "DuplicateKey"]
