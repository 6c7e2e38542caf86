"""The ``Database`` handle: one SQLAlchemy engine for the service's shared state.

* ``sqlite:///path`` (the default): WAL journal, ``synchronous=NORMAL``, a busy timeout so
  concurrent writers (threads, or several service processes on one file) wait instead of
  failing, and pysqlite's own transaction handling turned off so that SQLAlchemy's ``BEGIN``
  is the one sent -- ``BEGIN IMMEDIATE`` for :meth:`Database.write` transactions, so a
  read-then-write transaction never dead-ends in ``SQLITE_BUSY``.
* ``postgresql://...`` (or ``postgresql+psycopg://``): psycopg 3, a connection pool,
  ``pool_pre_ping`` so a restarted server is reconnected transparently.

:meth:`Database.open` creates the tables that do not exist yet (``create_all``).

A database that cannot be reached (server down, connection lost, SQLite locked past the busy
timeout) raises :class:`DatabaseUnavailable`, a ``StoreUnavailable`` (the API answers 503), from
:meth:`Database.read` / :meth:`Database.write`; constraint violations pass through for the
caller to map (e.g. a replayed request id).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import StaticPool

from kizuna.db.driver import Driver
from kizuna.db.schema import metadata
from kizuna.errors import ConfigError, DatabaseUnavailable
from kizuna.filemodes import private_sqlite
from kizuna.locks import WriterLock

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another one before giving up."""


def configure_sqlite(dbapi_connection: Any, *, memory: bool = False) -> None:
    """The pragmas of every connection to the service database, the engine's pooled ones and
    the driver's (kizuna.db.driver): WAL (a file only), ``synchronous=NORMAL``, the busy
    timeout, foreign keys."""
    cursor = dbapi_connection.cursor()
    if not memory:
        cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_file(url: str) -> str | None:
    """The database file of a ``sqlite:///path`` URL (None without a path)."""
    path = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
    return path or None


def _normalise(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url



def _add_missing_columns(connection: Connection) -> None:
    """Add the nullable columns a newer Kizuna declares to tables an older one created
    (``create_all`` creates missing tables only). Only nullable columns without a server
    default are ever added this way, so old rows stay valid as they are (NULL)."""
    inspector = inspect(connection)
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable or column.server_default is not None:
                raise ConfigError(f"table {table.name} has no column {column.name}, which "
                                  "cannot be added to existing rows: migrate the database")
            kind = column.type.compile(dialect=connection.dialect)
            connection.exec_driver_sql(
                f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


class Database:
    """The service's database: ``engine``, plus :meth:`read` / :meth:`write` transactions."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 16) -> None:
        self.url = _normalise(url)
        try:
            if self.url.startswith("sqlite"):
                self.engine = self._sqlite_engine(self.url, echo=echo, pool_size=pool_size)
            elif self.url.startswith("postgresql"):
                self.engine = create_engine(self.url, echo=echo, pool_size=pool_size,
                                            max_overflow=pool_size, pool_pre_ping=True)
            else:
                raise ConfigError(f"unsupported database URL scheme in {self.safe_url()}: "
                                  "use sqlite:///path or postgresql://...")
        except (ArgumentError, NoSuchModuleError) as error:
            raise ConfigError(f"database URL {self.safe_url()} is not usable: {error}") from None
        self.dialect: str = self.engine.dialect.name
        # An in-memory database is one shared connection: every transaction takes the lock.
        self._memory = self.url in ("sqlite://", "sqlite:///:memory:")
        # SQLite has one writer at a time and its busy handler waits by sleeping (up to 100 ms
        # a try): writers queue on this lock instead, woken at once -- threads in-process,
        # service processes sharing the file on an flock beside it (kizuna.locks).
        self._write_lock = (WriterLock.beside(None if self._memory else _sqlite_file(self.url))
                            if self.dialect == "sqlite" else None)
        self.driver = Driver(self)
        """The read path's hot statements, through the DB-API directly (kizuna.db.driver)."""

    @property
    def memory(self) -> bool:
        """An in-memory SQLite database (one shared connection)."""
        return self._memory

    @property
    def sqlite_file(self) -> str | None:
        """The file of a SQLite database (None for PostgreSQL or in memory)."""
        return None if self.dialect != "sqlite" or self._memory else _sqlite_file(self.url)

    @property
    def write_lock(self) -> WriterLock | None:
        """What SQLite writers queue on (None on PostgreSQL)."""
        return self._write_lock

    def safe_url(self) -> str:
        """The URL without its password (for messages)."""
        head, sep, tail = self.url.partition("@")
        if not sep or "://" not in head:
            return self.url
        scheme, creds = head.split("://", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{tail}"

    @staticmethod
    def _sqlite_engine(url: str, *, echo: bool, pool_size: int) -> Engine:
        memory = url in ("sqlite://", "sqlite:///:memory:")
        options: dict[str, Any] = {"echo": echo}
        if memory:
            # One shared connection: an in-memory database exists once per connection.
            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            # A connection per concurrent request thread (16 readers + anchorer + follower).
            options.update(pool_size=pool_size, max_overflow=2 * pool_size,
                           connect_args={"check_same_thread": False,
                                         "timeout": BUSY_TIMEOUT_MS / 1000})
            path = _sqlite_file(url)
            if path:
                # Sessions, key fragments, receipts, emergency kits: 0600 before SQLite opens
                # it (its -wal / -shm copy the mode), whatever the umask or an old file's mode.
                private_sqlite(path)
        engine = create_engine(url, **options)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy sends BEGIN itself (below)
            configure_sqlite(dbapi_connection, memory=memory)

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            immediate = connection.get_execution_options().get("kizuna_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @classmethod
    def open(cls, url: str, **options: Any) -> Database:
        """Connect and create the missing tables."""
        database = cls(url, **options)
        database.create_all()
        return database

    def create_all(self) -> None:
        """Create the missing tables, one process at a time: service instances started
        together on a fresh database would otherwise race (SQLite refuses the second writer's
        lock upgrade at once, "database is locked"; PostgreSQL fails on a duplicate type)."""
        try:
            with self._write_lock or nullcontext(), self.engine.connect() as connection:
                connection = connection.execution_options(kizuna_write=True)  # BEGIN IMMEDIATE
                with connection.begin():
                    if self.dialect == "postgresql":
                        connection.exec_driver_sql(
                            f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
                    metadata.create_all(connection)
                    _add_missing_columns(connection)
        except OperationalError as error:
            raise ConfigError(f"cannot create the tables in {self.safe_url()}: "
                              f"{error.orig}") from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction for reads (committed at the end; rolled back on an error)."""
        lock = self._write_lock if self._memory and self._write_lock else nullcontext()
        with lock, self._read() as connection:
            yield connection

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection, connection.begin():
                yield connection
        except (OperationalError, InterfaceError) as error:
            raise DatabaseUnavailable(f"the database {self.safe_url()} is unavailable: "
                                      f"{error.orig}") from None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: on SQLite it takes the write lock at ``BEGIN`` (IMMEDIATE),
        after the threads of this process queued on an in-process lock."""
        with self._write_lock or nullcontext():
            try:
                with self.engine.connect() as connection:
                    connection = connection.execution_options(kizuna_write=True)
                    with connection.begin():
                        yield connection
            except (OperationalError, InterfaceError) as error:
                raise DatabaseUnavailable(f"the database {self.safe_url()} is unavailable: "
                                          f"{error.orig}") from None

    def dispose(self) -> None:
        """Close every pooled connection (and the writers' lock file)."""
        self.driver.close()
        self.engine.dispose()
        if self._write_lock is not None:
            self._write_lock.close()

    def __repr__(self) -> str:
        return f"Database({self.safe_url()})"


_SCHEMA_LOCK_KEY = 0x4B495A554E41  # "KIZUNA": the advisory lock creating the schema takes


__all__ = ["BUSY_TIMEOUT_MS", "Database"]
