"""Daily partitions of the prediction log on PostgreSQL (declarative partitioning by ``ts``):
maintenance creates the coming days ahead of their rows and drops whole days once they are
past the policy and rolled up, which costs a catalog change instead of millions of deletes;
only the day the cutoff falls in is deleted in batches. Rows outside every partition (a pass
missed for a week) land in ``predictions_default`` and are pruned by the batched deletes like
on SQLite. Days, not months: with a policy in days a month would mostly be deleted row by row."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)
TABLE = "predictions"
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
_PARTITION = re.compile(rf"{TABLE}_(default|p\d{{8}})")


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic's filter: a partition is part of ``predictions``, not a table of the models."""
    return not (type_ == "table" and name is not None and _PARTITION.fullmatch(name))


def day_start(moment: datetime, offset: int = 0) -> datetime:
    return datetime(moment.year, moment.month, moment.day) + timedelta(days=offset)


def partition_name(day: datetime) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def is_partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    query = text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = :table AND c.relnamespace = to_regnamespace(current_schema())::oid"
    )
    return connection.execute(query, {"table": TABLE}).first() is not None


def create_day(connection: Connection, day: datetime) -> None:
    """The partition of ``day`` (midnight, naive UTC), if it does not exist yet."""
    following = day + timedelta(days=1)
    connection.execute(
        text(
            f'CREATE TABLE IF NOT EXISTS "{partition_name(day)}" PARTITION OF {TABLE} '
            f"FOR VALUES FROM ('{day:%Y-%m-%d}') TO ('{following:%Y-%m-%d}')"
        )
    )


def ensure_days(engine: Engine, now: datetime, ahead: int = 7, back: int = 0) -> int:
    """Partitions from ``back`` days before ``now`` to ``ahead`` days after; returns how many
    exist in that span. A day whose rows already sit in the default partition cannot get its
    own (PostgreSQL refuses): it is logged and left to the batched deletes."""
    if engine.dialect.name != "postgresql":
        return 0
    made = 0
    for offset in range(-back, ahead + 1):
        day = day_start(now, offset)
        try:
            with engine.begin() as connection:
                if not is_partitioned(connection):
                    return 0
                create_day(connection, day)
            made += 1
        except DBAPIError as error:
            logger.warning("partition %s not created: %s", partition_name(day), error)
    return made


def partitions(connection: Connection) -> list[tuple[str, datetime, datetime]]:
    """(name, start, end) of the daily partitions, oldest first (not the default one)."""
    query = text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = :table AND p.relnamespace = to_regnamespace(current_schema())::oid"
    )
    found = []
    for name, bound in connection.execute(query, {"table": TABLE}):
        match = _BOUND.search(bound or "")
        if match:
            start, end = (datetime.fromisoformat(value) for value in match.groups())
            found.append((name, start, end))
    return sorted(found, key=lambda partition: partition[1])


def drop_days_before(engine: Engine, before: datetime) -> int:
    """Drop the partitions that end at or before ``before``; returns the rows they held."""
    if engine.dialect.name != "postgresql":
        return 0
    dropped = 0
    with engine.connect() as connection:
        if not is_partitioned(connection):
            return 0
        old = [(name, end) for name, _, end in partitions(connection) if end <= before]
    for name, _ in old:
        with engine.begin() as connection:
            rows = connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            connection.execute(text(f'ALTER TABLE {TABLE} DETACH PARTITION "{name}"'))
            connection.execute(text(f'DROP TABLE "{name}"'))
        dropped += rows
        logger.info("dropped partition %s (%d rows)", name, rows)
    return dropped
