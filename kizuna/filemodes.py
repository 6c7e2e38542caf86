"""Private files and directories: 0600 / 0700 whatever the umask, and whatever already exists.

Kizuna's files hold what others must not read: the service database (sessions, key fragments,
receipts, emergency kits), the event index, the content store, keystores. ``mkdir`` and
``open`` modes are filtered by the umask, and an existing directory or file keeps the mode it
has — so a home created earlier with 0755, or a database path in a directory of its own, left
them readable by every user of the machine (issue #15, finding 11). These functions create
with the private mode, set it exactly (independent of the umask), and tighten an existing one
that is too open, with a log line saying so.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("kizuna.files")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside a database (it creates them with the database file's mode)."""


def _tighten(path: Path, mode: int) -> None:
    """``chmod`` ``path`` to ``mode`` when group or others have any access to it (logged)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & 0o077:
        try:
            path.chmod(mode)
        except PermissionError:  # not ours (a shared parent): say so, do not fail
            log.warning("%s is readable by others (mode %o) and cannot be changed", path,
                        current)
            return
        log.warning("%s was readable by others (mode %o): set to %o", path, current, mode)


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents, each 0700) or tighten it to 0700."""
    directory = Path(path)
    missing = []
    probe = directory
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # made meanwhile by another process
            pass
        else:
            created.chmod(PRIVATE_DIR)  # exactly 0700, whatever the umask
    _tighten(directory, PRIVATE_DIR)
    return directory


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty if missing, mode 0600 (its parent must exist), or tighten it."""
    file = Path(path)
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        _tighten(file, PRIVATE_FILE)
    else:
        try:
            os.fchmod(fd, PRIVATE_FILE)
        finally:
            os.close(fd)
    return file


def private_sqlite(path: str | os.PathLike[str]) -> Path:
    """A SQLite database file ready to open privately: missing parents made 0700 (an existing
    parent is left as it is: it may be shared), the file created 0600 before SQLite opens it
    (SQLite gives its -wal / -shm files the database file's mode) or tightened, and
    companions that exist already tightened too."""
    file = Path(path)
    parent = file.parent
    if not parent.exists():
        private_dir(parent)
    private_file(file)
    for suffix in SQLITE_COMPANIONS:
        _tighten(file.with_name(file.name + suffix), PRIVATE_FILE)
    return file


__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "private_dir", "private_file", "private_sqlite"]
