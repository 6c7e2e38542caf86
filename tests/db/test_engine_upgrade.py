"""A database made by an older Kizuna opens in a newer one: new nullable columns are added."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kizuna.db.engine import Database
from kizuna.db.records import load_record

_OLD_RECORDS = (
    "CREATE TABLE records (record_id BLOB PRIMARY KEY, patient VARCHAR(42) NOT NULL, "
    "scope_id BLOB NOT NULL, cid TEXT NOT NULL, commitment BLOB NOT NULL, size BIGINT NOT NULL, "
    "content_type TEXT NOT NULL, created_at BIGINT NOT NULL, "
    "epoch BIGINT DEFAULT 0 NOT NULL)")


def test_records_of_an_older_database_gain_the_batch_columns_as_null(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute(_OLD_RECORDS)
        old.execute("INSERT INTO records VALUES (?, ?, ?, 'bafyold', ?, 7, 'text/plain', 1, 2)",
                    (b"\x01" * 32, "0x" + "11" * 20, b"\x02" * 32, b"\x03" * 32))
    database = Database.open(f"sqlite:///{path}")
    try:
        info = load_record(database, b"\x01" * 32)
        assert info is not None
        assert (info.cid, info.size, info.epoch) == ("bafyold", 7, 2)
        assert (info.batch_root, info.leaf_index, info.proof) == (None, None, None)
    finally:
        database.dispose()
    # Opening again is a no-op (the columns are there now).
    Database.open(f"sqlite:///{path}").dispose()
