"""Counts of items by pipeline and state, in SQLAlchemy Core: ``conveyor status`` loads no ORM.

``ITEMS`` names the two columns of :class:`conveyor.store.models.Item` the counts read; a
lightweight ``table()`` needs neither the ORM nor the models' metadata.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection, column, func, select, table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ITEMS = table("items", column("pipeline"), column("status"))


def counts_by_status(connection: Connection | Session) -> dict[str, dict[str, int]]:
    """``{pipeline: {status: count}}`` over all items (statuses with no item are absent)."""
    rows = connection.execute(
        select(ITEMS.c.pipeline, ITEMS.c.status, func.count()).group_by(
            ITEMS.c.pipeline, ITEMS.c.status
        )
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for pipeline, status, count in rows:
        counts.setdefault(pipeline, {})[status] = count
    return counts
