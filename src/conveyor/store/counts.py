"""Counts of items by pipeline and state: the one query ``conveyor status`` makes.

It runs through SQLAlchemy (a Core connection or a session) or, on a SQLite store at its
heads, straight through the standard library's driver (:mod:`conveyor.store.sqlite_reads`);
so this module imports SQLAlchemy only when a SQLAlchemy connection asks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

ItemCounts = dict[str, dict[str, int]]  # {pipeline: {status: count}}
ITEM_COUNTS_SQL = "SELECT pipeline, status, count(*) FROM items GROUP BY pipeline, status"


def counts_by_status(connection: Connection | Session) -> ItemCounts:
    """``{pipeline: {status: count}}`` over all items (statuses with no item are absent)."""
    from sqlalchemy import text

    return nest_counts(connection.execute(text(ITEM_COUNTS_SQL)).all())


def nest_counts(rows: Iterable[Sequence[Any]]) -> ItemCounts:
    """The rows of :data:`ITEM_COUNTS_SQL` as ``{pipeline: {status: count}}``."""
    counts: ItemCounts = {}
    for pipeline, status, count in rows:
        counts.setdefault(pipeline, {})[status] = count
    return counts
