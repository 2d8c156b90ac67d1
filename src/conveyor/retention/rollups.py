"""Rolling raw rows up into per-minute, then per-hour rows, chunk by chunk behind a
watermark, so a run that stops half-way resumes where it was and nothing is counted twice.

Predictions are aggregated in SQL (millions of rows never pass through Python); step runs,
far fewer, in Python. Hours are merged from the minute roll-ups (:func:`merge_into_hours`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, literal_column, select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.retention.policy import (
    HOUR,
    LATENCY_BOUNDS_MS,
    MINUTE,
    Aggregate,
    RetentionPolicy,
    merge_into_hours,
    period_start,
)
from conveyor.retention.tables import PredictionRollup, RollupWatermark, StepRunRollup
from conveyor.serving.tables import Prediction
from conveyor.store.database import read_only_session_factory
from conveyor.store.models import Item, StepRun

Minutes = list[tuple[datetime, tuple[Any, ...], Aggregate]]


@dataclass(frozen=True)
class RollupSpec:
    """One raw table's roll-ups: how to find its first row, aggregate a time range per
    minute, and store or read an aggregate as a roll-up row."""

    name: str
    table: type[PredictionRollup] | type[StepRunRollup]
    key_columns: tuple[str, ...]
    first_raw: Callable[[Session], datetime | None]
    raw_minutes: Callable[[Session, datetime, datetime], Minutes]
    to_columns: Callable[[Aggregate], dict[str, Any]]
    from_row: Callable[[Any], Aggregate]


def watermark(session: Session, name: str) -> datetime | None:
    row = session.get(RollupWatermark, name)
    return None if row is None else row.rolled_until


def _set_watermark(session: Session, name: str, until: datetime) -> None:
    row = session.get(RollupWatermark, name)
    if row is None:
        session.add(RollupWatermark(name=name, rolled_until=until))
    else:
        row.rolled_until = until


def roll_minutes(
    sessions: sessionmaker[Session], spec: RollupSpec, now: datetime, policy: RetentionPolicy
) -> int:
    """Roll up every complete minute older than ``policy.settle_seconds``; returns rows made.

    Each chunk is aggregated in a read-only session (on SQLite a write transaction would hold
    the database's write lock for the whole aggregate) and stored in a short transaction that
    first checks that no other process stored it meanwhile."""
    target = period_start(now - timedelta(seconds=policy.settle_seconds), MINUTE)
    name, made = f"{spec.name}:{MINUTE}", 0
    reads = read_only_session_factory(sessions.kw["bind"])
    while True:
        with reads() as session:
            known = watermark(session, name)
            start = known or _first_minute(session, spec)
            if start is None or start >= target:
                return made
            end = min(target, start + timedelta(hours=policy.chunk_hours))
            rows = spec.raw_minutes(session, start, end)
        with sessions.begin() as session:
            if watermark(session, name) != known:
                continue  # another maintenance pass stored this chunk: go on from its mark
            made += _store(session, spec, MINUTE, rows)
            _set_watermark(session, name, end)


def _first_minute(session: Session, spec: RollupSpec) -> datetime | None:
    first = spec.first_raw(session)
    return None if first is None else period_start(first, MINUTE)


def roll_hours(sessions: sessionmaker[Session], spec: RollupSpec, policy: RetentionPolicy) -> int:
    """Merge the minute roll-ups of every hour whose minutes are all rolled up."""
    name, made = f"{spec.name}:{HOUR}", 0
    while True:
        with sessions.begin() as session:
            minutes_until = watermark(session, f"{spec.name}:{MINUTE}")
            if minutes_until is None:
                return made
            target = period_start(minutes_until, HOUR)
            start = watermark(session, name) or _first_rollup(session, spec)
            if start is None or start >= target:
                return made
            end = min(target, start + timedelta(hours=max(1, round(policy.chunk_hours * 4))))
            hours = merge_into_hours(_minute_rollups(session, spec, start, end))
            made += _store(session, spec, HOUR, [(s, k, a) for (s, k), a in hours.items()])
            _set_watermark(session, name, end)


def _first_rollup(session: Session, spec: RollupSpec) -> datetime | None:
    table = spec.table
    first = session.scalar(select(func.min(table.period_start)).where(table.resolution == MINUTE))
    return None if first is None else period_start(first, HOUR)


def _minute_rollups(session: Session, spec: RollupSpec, start: datetime, end: datetime) -> Minutes:
    table = spec.table
    rows = session.execute(
        select(table.__table__).where(
            table.resolution == MINUTE, table.period_start >= start, table.period_start < end
        )
    )
    return [
        (row.period_start, tuple(getattr(row, c) for c in spec.key_columns), spec.from_row(row))
        for row in rows
    ]


def _store(session: Session, spec: RollupSpec, resolution: str, rows: Minutes) -> int:
    """One multi-row INSERT (executemany) for the chunk: ORM objects cost ~1 ms a row."""
    values = [
        {"resolution": resolution, "period_start": start}
        | dict(zip(spec.key_columns, key, strict=True))
        | spec.to_columns(aggregate)
        for start, key, aggregate in rows
    ]
    if values:
        session.execute(insert(spec.table), values)
    return len(values)


# -- predictions -----------------------------------------------------------------------------


def _truncate_to_minute(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc(literal_column("'minute'"), column)
    return func.strftime(literal_column("'%Y-%m-%d %H:%M:00'"), column)


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def prediction_minutes(
    session: Session, start: datetime, end: datetime, endpoint: str | None = None
) -> Minutes:
    """Raw predictions in [start, end) aggregated per minute in SQL, as roll-up rows would be
    (every endpoint, or only ``endpoint``)."""
    minute = _truncate_to_minute(session, Prediction.ts)
    keys = (Prediction.endpoint, Prediction.model, Prediction.version, Prediction.arm)
    buckets = [func.sum(case((Prediction.latency_ms <= b, 1), else_=0)) for b in LATENCY_BOUNDS_MS]
    query = (
        select(
            minute,
            *keys,
            func.count(),
            func.sum(case((Prediction.error.is_not(None), 1), else_=0)),
            func.sum(Prediction.latency_ms),
            func.max(Prediction.latency_ms),
            *buckets,
        )
        .where(Prediction.ts >= start, Prediction.ts < end)
        .where(*([Prediction.endpoint == endpoint] if endpoint is not None else []))
        .group_by(minute, *keys)
    )
    found = []
    for row in session.execute(query):
        count = int(row[5])
        aggregate = Aggregate(
            count, int(row[6]), float(row[7]), float(row[8]), [*map(int, row[9:]), count]
        )
        found.append((_as_datetime(row[0]), tuple(row[1:5]), aggregate))
    return found


PREDICTIONS = RollupSpec(
    name="predictions",
    table=PredictionRollup,
    key_columns=("endpoint", "model", "version", "arm"),
    first_raw=lambda session: session.scalar(select(func.min(Prediction.ts))),
    raw_minutes=prediction_minutes,
    to_columns=lambda a: {
        "requests": a.count,
        "errors": a.errors,
        "latency_sum_ms": a.total,
        "latency_max_ms": a.maximum,
        "latency_buckets": a.buckets,
    },
    from_row=lambda row: Aggregate(
        row.requests, row.errors, row.latency_sum_ms, row.latency_max_ms, list(row.latency_buckets)
    ),
)


# -- step runs -------------------------------------------------------------------------------


def _step_run_minutes(session: Session, start: datetime, end: datetime) -> Minutes:
    rows = session.execute(
        select(StepRun.finished_at, Item.pipeline, StepRun.step, StepRun.status, StepRun.started_at)
        .join(Item, Item.id == StepRun.item_id)
        .where(StepRun.finished_at >= start, StepRun.finished_at < end)
    )
    minutes: dict[tuple[datetime, tuple[Any, ...]], Aggregate] = {}
    for finished_at, pipeline, step, status, started_at in rows:
        assert finished_at is not None  # the range condition excludes unfinished runs
        seconds = (finished_at - started_at).total_seconds() if started_at else 0.0
        key = (period_start(finished_at, MINUTE), (pipeline, step, status))
        minutes.setdefault(key, Aggregate()).add(Aggregate(1, 0, seconds, seconds))
    return [(s, k, a) for (s, k), a in minutes.items()]


STEP_RUNS = RollupSpec(
    name="step_runs",
    table=StepRunRollup,
    key_columns=("pipeline", "step", "status"),
    first_raw=lambda session: session.scalar(select(func.min(StepRun.finished_at))),
    raw_minutes=_step_run_minutes,
    to_columns=lambda a: {
        "runs": a.count,
        "duration_sum_seconds": a.total,
        "duration_max_seconds": a.maximum,
    },
    from_row=lambda row: Aggregate(row.runs, 0, row.duration_sum_seconds, row.duration_max_seconds),
)
