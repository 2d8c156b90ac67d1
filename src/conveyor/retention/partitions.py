"""Monthly partitions of the prediction log on PostgreSQL (declarative partitioning by
``ts``): maintenance creates the coming months ahead of their rows and drops whole months once
they are past the policy and rolled up, which costs a catalog change instead of millions of
deletes. Rows outside every month (a pass missed for months) land in ``predictions_default``
and are pruned by the batched deletes like on SQLite."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)
TABLE = "predictions"
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
_PARTITION = re.compile(rf"{TABLE}_(default|p\d{{6}})")


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic's filter: a partition is part of ``predictions``, not a table of the models."""
    return not (type_ == "table" and name is not None and _PARTITION.fullmatch(name))


def month_start(moment: datetime, offset: int = 0) -> datetime:
    months = moment.year * 12 + moment.month - 1 + offset
    return datetime(months // 12, months % 12 + 1, 1)


def partition_name(month: datetime) -> str:
    return f"{TABLE}_p{month:%Y%m}"


def is_partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    query = text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = :table AND c.relnamespace = to_regnamespace(current_schema())::oid"
    )
    return connection.execute(query, {"table": TABLE}).first() is not None


def create_month(connection: Connection, month: datetime) -> None:
    """The partition of ``month`` (its first day, naive UTC), if it does not exist yet."""
    connection.execute(
        text(
            f'CREATE TABLE IF NOT EXISTS "{partition_name(month)}" PARTITION OF {TABLE} '
            f"FOR VALUES FROM ('{month:%Y-%m-%d}') TO ('{month_start(month, 1):%Y-%m-%d}')"
        )
    )


def ensure_months(engine: Engine, now: datetime, ahead: int = 2, back: int = 0) -> int:
    """Partitions from ``back`` months before ``now`` to ``ahead`` months after; returns how
    many exist in that span. A month whose rows already sit in the default partition cannot
    get its own (PostgreSQL refuses): it is logged and left to the batched deletes."""
    if engine.dialect.name != "postgresql":
        return 0
    made = 0
    for offset in range(-back, ahead + 1):
        month = month_start(now, offset)
        try:
            with engine.begin() as connection:
                if not is_partitioned(connection):
                    return 0
                create_month(connection, month)
            made += 1
        except DBAPIError as error:
            logger.warning("partition %s not created: %s", partition_name(month), error)
    return made


def months(connection: Connection) -> list[tuple[str, datetime, datetime]]:
    """(name, start, end) of the monthly partitions, oldest first (not the default one)."""
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


def drop_months_before(engine: Engine, before: datetime) -> int:
    """Drop the partitions that end at or before ``before``; returns the rows they held."""
    if engine.dialect.name != "postgresql":
        return 0
    dropped = 0
    with engine.connect() as connection:
        if not is_partitioned(connection):
            return 0
        old = [(name, end) for name, _, end in months(connection) if end <= before]
    for name, _ in old:
        with engine.begin() as connection:
            rows = connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            connection.execute(text(f'ALTER TABLE {TABLE} DETACH PARTITION "{name}"'))
            connection.execute(text(f'DROP TABLE "{name}"'))
        dropped += rows
        logger.info("dropped partition %s (%d rows)", name, rows)
    return dropped
