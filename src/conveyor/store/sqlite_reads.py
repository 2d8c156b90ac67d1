"""``conveyor status`` on a SQLite store without SQLAlchemy.

Importing SQLAlchemy was 40% of ``conveyor status`` (docs/benchmarks.md), for one GROUP BY. On
a SQLite store whose schema is exactly at its heads, the counts come through the standard
library's driver instead, under the same busy timeout and in one read transaction, taking no
write lock like the engine's read-only connections. Every other case answers None and the
caller takes the engine's path, which creates, migrates or refuses the store as every command
does: PostgreSQL (psycopg's own import costs about what SQLAlchemy's does), a URL with options,
a file that does not exist yet, a schema behind or ahead of the revision files, any error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from conveyor.filemodes import private_sqlite_database
from conveyor.store.counts import ITEM_COUNTS_SQL, ItemCounts, nest_counts
from conveyor.store.revisions import VERSION_TABLE, head_revisions

SQLITE_SCHEMES = ("sqlite:///", "sqlite+pysqlite:///")
BUSY_TIMEOUT_SECONDS = 60  # what store.database gives the engine's SQLite connections


def sqlite_file(url: str) -> Path | None:
    """The database file of a plain SQLite URL (no options, no escapes), else None."""
    scheme = next((s for s in SQLITE_SCHEMES if url.startswith(s)), None)
    if scheme is None:
        return None
    database = url.removeprefix(scheme)
    if not database or database == ":memory:" or any(c in database for c in "?%#"):
        return None  # SQLAlchemy decodes or interprets these: leave them to it
    return Path(database)


def item_counts_at_heads(url: str, version_folders: Sequence[Path]) -> ItemCounts | None:
    """Counts of items by pipeline and state when ``url`` is a SQLite store exactly at the
    heads of ``version_folders``; None when unsure (then ask the engine)."""
    database = sqlite_file(url)
    heads = head_revisions(version_folders)
    if database is None or heads is None or not database.is_file():
        return None
    private_sqlite_database(database)  # as the engine does on every connect
    try:
        with closing(_connect(database)) as connection:
            connection.execute("BEGIN")  # revisions and counts from one snapshot
            stored = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}")
            if frozenset(row[0] for row in stored) != heads:
                return None
            return nest_counts(connection.execute(ITEM_COUNTS_SQL))
    except sqlite3.Error:
        return None  # e.g. no version table yet: the engine's path says what is wrong


def _connect(database: Path) -> sqlite3.Connection:
    # mode=rw: never create the file here (first use is the engine's, under its lock).
    uri = f"file:{quote(str(database.resolve()))}?mode=rw"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
