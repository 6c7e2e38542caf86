"""``Database.driver``: the read path's statements through the DB-API directly, on a SQLite
file, SQLite in memory and PostgreSQL — commits, rollbacks, duplicate keys, threads, and a
database that went away."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from together import run_together

from kizuna.db import Database
from kizuna.db.driver import DuplicateKey
from kizuna.errors import DatabaseUnavailable

INSERT = "INSERT INTO siwe_nonces (nonce, issued_at) VALUES (?, ?)"
COUNT = "SELECT count(*) FROM siwe_nonces"


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite-file":
        url = f"sqlite:///{tmp_path / 'driver.db'}"
    elif request.param == "sqlite-memory":
        url = "sqlite://"
    else:
        from pgserver import fresh_database

        url = fresh_database(request.getfixturevalue("postgres_url"))
    database = Database.open(url)
    yield database
    database.dispose()


def test_a_write_commits_and_reads_see_it_through_both_paths(db: Database) -> None:
    with db.driver.write() as cursor:
        cursor.execute(INSERT, ("a", 1))
        cursor.execute(INSERT + " RETURNING issued_at", ("b", 2))
        assert cursor.fetchone()[0] == 2
    assert db.driver.rows("SELECT nonce, issued_at FROM siwe_nonces ORDER BY nonce", ()) \
        == [("a", 1), ("b", 2)]
    assert db.driver.first("SELECT issued_at FROM siwe_nonces WHERE nonce = ?", ("b",)) == (2,)
    assert db.driver.first("SELECT issued_at FROM siwe_nonces WHERE nonce = ?", ("c",)) is None
    with db.read() as conn:  # SQLAlchemy sees what the driver committed
        assert conn.exec_driver_sql(COUNT).scalar_one() == 2


def test_a_duplicate_key_is_named_and_rolls_the_whole_transaction_back(db: Database) -> None:
    with db.driver.write() as cursor:
        cursor.execute(INSERT, ("taken", 1))
    with pytest.raises(DuplicateKey), db.driver.write() as cursor:
        cursor.execute(INSERT, ("fresh", 2))
        cursor.execute(INSERT, ("taken", 3))
    assert db.driver.rows("SELECT nonce, issued_at FROM siwe_nonces", ()) == [("taken", 1)]
    # The connection is usable afterwards (no transaction left open on it).
    with db.driver.write() as cursor:
        cursor.execute(INSERT, ("after", 4))
    assert db.driver.first(COUNT, ())[0] == 2


def test_other_constraint_failures_are_not_reported_as_duplicates(db: Database) -> None:
    # the driver's own class, unwrapped (sqlite3 / psycopg IntegrityError)
    with pytest.raises(Exception) as caught, db.driver.write() as cursor:
        cursor.execute(INSERT, ("no-time", None))  # issued_at is NOT NULL
    assert not isinstance(caught.value, DuplicateKey)
    assert "null" in str(caught.value).lower()
    assert db.driver.first(COUNT, ())[0] == 0


def test_an_error_in_the_block_leaves_nothing_written(db: Database) -> None:
    with pytest.raises(RuntimeError, match="half-way"), db.driver.write() as cursor:
        cursor.execute(INSERT, ("half", 1))
        raise RuntimeError("failed half-way")
    assert db.driver.first(COUNT, ())[0] == 0


def test_threads_writing_at_once_lose_nothing(db: Database) -> None:
    def work(i: int) -> None:
        for j in range(25):
            with db.driver.write() as cursor:
                cursor.execute(INSERT, (f"{i}-{j}", j))
            db.driver.rows(COUNT, ())

    errors = run_together(work, 8)
    assert not errors, errors
    assert db.driver.first(COUNT, ())[0] == 200


def test_one_insert_is_its_own_committed_transaction(db: Database) -> None:
    """``Driver.insert`` (the read's receipt): committed when it returns — another connection
    sees the row —, a duplicate named and leaving nothing open, threads losing nothing."""
    assert db.driver.insert(INSERT + " RETURNING issued_at", ("a", 7)) == (7,)
    with db.read() as conn:  # another connection than the driver's
        assert conn.exec_driver_sql(COUNT).scalar_one() == 1
    with pytest.raises(DuplicateKey):
        db.driver.insert(INSERT + " RETURNING issued_at", ("a", 8))
    with db.driver.write() as cursor:  # the connection is in no transaction afterwards
        cursor.execute(INSERT, ("b", 9))

    def work(i: int) -> None:
        for j in range(25):
            db.driver.insert(INSERT + " RETURNING nonce", (f"{i}-{j}", j))

    errors = run_together(work, 8)
    assert not errors, errors
    with db.read() as conn:
        assert conn.exec_driver_sql(COUNT).scalar_one() == 202


def test_connections_closed_by_dispose_are_reopened_on_next_use(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'reopen.db'}")
    try:
        with db.driver.write() as cursor:
            cursor.execute(INSERT, ("x", 1))
        db.driver.close()
        assert db.driver.first(COUNT, ())[0] == 1
    finally:
        db.dispose()


def test_an_unreadable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    db = Database.open(f"sqlite:///{path}")
    try:
        path.unlink()
        for extra in ("-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        path.mkdir()  # the file is now a directory: nothing can open it
        db.driver.close()
        with pytest.raises(DatabaseUnavailable, match="unavailable"):
            db.driver.rows(COUNT, ())
    finally:
        db.dispose()


def test_a_postgresql_server_gone_away_is_unavailable(tmp_path: Path) -> None:
    from pgserver import PostgresServer, fresh_database, postgres_available

    if postgres_available():
        pytest.skip(postgres_available())
    server = PostgresServer(tmp_path).start()
    try:
        db = Database.open(fresh_database(server.url))
        assert db.driver.first(COUNT, ())[0] == 0
    finally:
        server.stop()
    with pytest.raises(DatabaseUnavailable, match="unavailable"):
        db.driver.rows(COUNT, ())
    with pytest.raises(DatabaseUnavailable, match="unavailable"), db.driver.write() as cursor:
        cursor.execute(INSERT, ("y", 1))
    db.dispose()
