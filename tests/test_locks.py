"""WriterLock: SQLite writers of one file take turns on an flock (processes) and a re-entrant
lock (threads) instead of SQLite's sleeping busy handler."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from kizuna.db import Database
from kizuna.db import schema as t
from kizuna.locks import WriterLock

HOLDER = """
import sys, time
from pathlib import Path
from kizuna.locks import WriterLock
with WriterLock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _free(path: Path) -> bool:
    """Whether another open file description can take the flock right now."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_another_process_waits_until_the_holder_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "db-writelock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "0.6"],
                              stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
    began = time.monotonic()
    with WriterLock(path):
        waited = time.monotonic() - began
    assert holder.wait(timeout=10) == 0
    assert waited > 0.3, waited


def test_nested_writes_keep_the_lock_until_the_outermost_ends(tmp_path: Path) -> None:
    path = tmp_path / "db-writelock"
    lock = WriterLock(path)
    with lock:
        with lock:
            assert not _free(path)
        assert not _free(path)  # the inner exit did not release the process's flock
    assert _free(path)
    lock.close()


def test_two_processes_writing_one_database_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    Database.open(url).dispose()
    writer = (
        "import sys\n"
        "from kizuna.db import Database\n"
        "from kizuna.db import schema as t\n"
        "db = Database.open(sys.argv[1])\n"
        "for i in range(150):\n"
        "    with db.write() as conn:\n"
        "        conn.execute(t.siwe_nonces.insert().values(nonce=f'{sys.argv[2]}-{i}',"
        " issued_at=i))\n"
        "db.dispose()\n")
    children = [subprocess.Popen([sys.executable, "-c", writer, url, name],
                                 stderr=subprocess.PIPE) for name in ("a", "b", "c")]
    failures = [c.stderr.read().decode()[-400:] for c in children  # type: ignore[union-attr]
                if c.wait(timeout=120) != 0]
    assert failures == []
    database = Database.open(url)
    try:
        with database.read() as conn:
            count = conn.execute(select(func.count()).select_from(t.siwe_nonces)).scalar_one()
        assert count == 450
    finally:
        database.dispose()
    assert (tmp_path / "shared.db-writelock").exists()
