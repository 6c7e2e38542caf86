"""Issue #15, finding 11: Kizuna's files are private whatever exists already.

With a usual umask (022), a home that already existed with 0755, or a database / index / store
path outside the home, left the service database (sessions, key fragments, receipts, emergency
kits), its -wal / -shm, the event index and the content store readable by every user. Now each
is created 0600 / 0700 and an existing one that is more open is tightened (and logged).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from apienv import ApiServer, sign_in

from kizuna.chain.signers import LocalKeySigner
from kizuna.db import Database
from kizuna.stack.home import KizunaHome
from kizuna.storage.embedded import EmbeddedStore

pytestmark = pytest.mark.anvil


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (022): what the old code's modes came from."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def opened_up(path: Path, *, directory: bool) -> Path:
    """``path`` as an earlier run or another tool left it: world-readable."""
    if directory:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        path.chmod(0o644)
    return path


def test_home_that_exists_is_made_private(tmp_path: Path, open_umask: None) -> None:
    home = KizunaHome.resolve(opened_up(tmp_path / "home", directory=True))
    opened_up(home.keys_dir, directory=True)
    home.ensure()
    for directory in (home.root, home.keys_dir, home.chain_dir, home.deployments_dir,
                      home.logs_dir):
        assert mode(directory) == 0o700, directory


def test_database_elsewhere_is_private(tmp_path: Path, open_umask: None) -> None:
    fresh = tmp_path / "srv" / "new" / "kizuna.sqlite3"  # parents missing
    db = Database.open(f"sqlite:///{fresh}")
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
    for path in (fresh, fresh.with_name(fresh.name + "-wal"),
                 fresh.with_name(fresh.name + "-shm")):
        assert path.exists() and mode(path) == 0o600, (path, oct(mode(path)))
    assert mode(fresh.parent) == 0o700  # created by Kizuna
    db.dispose()
    # an existing database (and WAL) left 0644 is tightened when opened
    old = opened_up(tmp_path / "shared" / "old.sqlite3", directory=False)
    opened_up(old.with_name(old.name + "-wal"), directory=False)
    reopened = Database.open(f"sqlite:///{old}")
    wal = old.with_name(old.name + "-wal")
    assert mode(old) == 0o600 and (not wal.exists() or mode(wal) == 0o600)
    reopened.dispose()
    assert mode(old.parent) == 0o755  # a directory that existed is not Kizuna's to change


def test_store_that_exists_is_made_private(tmp_path: Path, open_umask: None) -> None:
    root = opened_up(tmp_path / "store", directory=True)
    store = EmbeddedStore(root)
    cid = store.put(os.urandom(300_000))
    assert mode(root) == 0o700
    blocks = [p for p in root.rglob("*") if p.is_file() and "blocks" in p.parts]
    assert blocks and all(mode(p) == 0o600 for p in blocks), [oct(mode(p)) for p in blocks]
    assert store.get(cid)  # still readable by its owner
    store.close()


def test_the_real_service_keeps_its_files_private(
        tmp_path: Path, open_umask: None, start_api: Callable[..., ApiServer]) -> None:
    """``kizuna serve`` with its database, event index and store outside any home, the store
    directory existing with 0755: after a sign-in (sessions written) every file is private."""
    data = opened_up(tmp_path / "elsewhere", directory=True)
    store = opened_up(data / "store", directory=True)
    database = data / "db" / "service.sqlite3"
    index = data / "index" / "events.sqlite3"
    server = start_api(database_url=f"sqlite:///{database}", index_path=index,
                       store_path=store)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert sign_in(http, LocalKeySigner.generate())["token"]
    for path in (database, index):
        for companion in (path, path.with_name(path.name + "-wal"),
                          path.with_name(path.name + "-shm")):
            if companion.exists() or companion == path:
                assert mode(companion) == 0o600, (companion, oct(mode(companion)))
        assert mode(path.parent) == 0o700, path.parent
    assert mode(store) == 0o700
