"""Who may read what Conveyor keeps on disk: its owner only.

The home holds the database (password hashes, token hashes, every result), the inputs and the
MLflow store, so it is created 0700 and its databases 0600. SQLite gives its ``-wal``, ``-shm``
and ``-journal`` files the mode of the database file, so creating the database 0600 before
SQLite opens it covers them too; an older home's files are tightened when they are opened.

The ``conveyor`` command also sets the umask to 077 when storage lies inside the home (the
embedded default), so every file it or its local Ray workers create is private. Storage outside
the home (a shared mount that cluster nodes read under other accounts) keeps the umask the
process was started with: its permissions are the operator's to choose.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
PRIVATE_UMASK = 0o077
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")

logger = logging.getLogger(__name__)


def create_private_home(home: Path) -> None:
    """Create ``home`` readable by its owner only; warn if an existing one is open to others."""
    try:
        home.mkdir(mode=PRIVATE_DIRECTORY, parents=True)
    except FileExistsError:  # also when another process created it a moment ago
        _warn_if_open(home)
        return
    home.chmod(PRIVATE_DIRECTORY)  # mkdir's mode passes through the umask


def _warn_if_open(home: Path) -> None:
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o077:
        logger.warning(
            "Conveyor's home %s is open to other users (mode %o); `chmod 700 %s` keeps its "
            "database and inputs private",
            home,
            mode,
            home,
        )


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists and only its owner may read or write it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    os.close(descriptor)
    _restrict(path)
    return path


def _restrict(path: Path) -> None:
    try:
        path.chmod(PRIVATE_FILE)
    except FileNotFoundError:  # a -wal or -shm that another process's close just removed
        pass
    except PermissionError:  # another account's file that we may write: say so, carry on
        logger.warning("cannot make %s private (owned by another account): chmod 600 it", path)


def private_sqlite_database(database: Path) -> None:
    """The SQLite file and its companions, owner-only; the file is created if missing."""
    private_file(database)
    for suffix in SQLITE_COMPANIONS:
        _restrict(database.with_name(database.name + suffix))


def restrict_umask(home: Path, storage_url: str) -> bool:
    """Umask 077 for this process when storage lies inside ``home``; True if it was set."""
    if not _local_path_inside(storage_url, home):
        return False
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)
    return True


def _local_path_inside(url: str, folder: Path) -> bool:
    path = url.removeprefix("file://")
    if "://" in path:
        return False  # object storage: no file modes
    return Path(path).resolve().is_relative_to(folder.resolve())
