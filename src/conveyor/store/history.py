"""Reading the store's recent past for the dashboard: queue movements and step run times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from conveyor.core.durations import StepRunTime
from conveyor.core.lifecycle import TIMED_STEP_STATUSES, StepStatus, status_values
from conveyor.store.models import Item, StepRun

TIMED_STATUSES = status_values(TIMED_STEP_STATUSES)


@dataclass(frozen=True)
class QueueMovements:
    """Items waiting or running at ``start``, and items created and finished after it."""

    waiting_at_start: int
    created_at: list[datetime]
    finished_at: list[datetime]


def queue_movements(session: Session, start: datetime, end: datetime) -> QueueMovements:
    waiting = session.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.created_at <= start)
        .where(or_(Item.finished_at.is_(None), Item.finished_at > start))
    )
    created = session.scalars(
        select(Item.created_at).where(Item.created_at > start, Item.created_at <= end)
    ).all()
    finished = session.scalars(
        select(Item.finished_at).where(Item.finished_at > start, Item.finished_at <= end)
    ).all()
    return QueueMovements(int(waiting or 0), list(created), [m for m in finished if m])


def recent_step_run_times(session: Session, since: datetime, limit: int) -> list[StepRunTime]:
    """Succeeded and failed step runs that finished since ``since``, the latest ``limit``."""
    rows = session.execute(
        select(Item.pipeline, StepRun.step, StepRun.status, StepRun.started_at, StepRun.finished_at)
        .join(Item, Item.id == StepRun.item_id)
        .where(StepRun.finished_at >= since, StepRun.started_at.is_not(None))
        .where(StepRun.status.in_(TIMED_STATUSES))
        .order_by(StepRun.finished_at.desc(), StepRun.id.desc())
        .limit(limit)
    ).all()
    return [
        StepRunTime(
            pipeline=pipeline,
            step=step,
            seconds=max(0.0, (finished - started).total_seconds()),
            failed=status == StepStatus.FAILED.value,
        )
        for pipeline, step, status, started, finished in rows
        if started is not None and finished is not None  # always, by the query: for mypy
    ]
