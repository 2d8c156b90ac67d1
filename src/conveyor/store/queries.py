"""Reading the store: one item, lists with filters, counts, and result rows for export."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from conveyor.core.lifecycle import ACTIVE_STATUSES, ItemStatus, status_values
from conveyor.errors import ItemNotFoundError
from conveyor.store.counts import counts_by_status as counts_by_status  # for ORM callers
from conveyor.store.models import Item, Result, StepRun

MIN_PREFIX = 6


def get_item(session: Session, item_id: str) -> Item:
    """An item by id, or by a unique id prefix of at least 6 characters."""
    item = session.get(Item, item_id)
    if item is not None:
        return item
    if len(item_id) >= MIN_PREFIX and item_id.isalnum():
        matches = session.scalars(select(Item).where(Item.id.startswith(item_id)).limit(2)).all()
        if len(matches) == 1:
            return matches[0]
    raise ItemNotFoundError(
        f"no item with id {item_id!r}; `conveyor items` lists ids (a unique prefix of 6+ "
        "characters also works)."
    )


def step_runs(session: Session, item_id: str) -> list[StepRun]:
    return list(
        session.scalars(
            select(StepRun).where(StepRun.item_id == item_id).order_by(StepRun.id)
        ).all()
    )


def running_step_runs(session: Session, limit: int) -> list[tuple[StepRun, Item]]:
    """Step runs handed to workers and not yet reported, oldest first."""
    rows = session.execute(
        select(StepRun, Item)
        .join(Item, Item.id == StepRun.item_id)
        .where(StepRun.status == "running")
        .order_by(StepRun.submitted_at, StepRun.id)
        .limit(limit)
    ).all()
    return [(run, item) for run, item in rows]


def result_of(session: Session, item_id: str) -> Result | None:
    return session.get(Result, item_id)


@dataclass(frozen=True)
class ItemFilter:
    pipeline: str | None = None
    status: str | None = None
    text: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def apply(self, query: Any) -> Any:
        if self.pipeline:
            query = query.where(Item.pipeline == self.pipeline)
        if self.status:
            query = query.where(Item.status == self.status)
        if self.text:
            pattern = f"%{self.text}%"
            query = query.where(or_(Item.input_name.ilike(pattern), Item.id.startswith(self.text)))
        if self.created_after:
            query = query.where(Item.created_at >= self.created_after)
        if self.created_before:
            query = query.where(Item.created_at < self.created_before)
        return query


def list_items(session: Session, filters: ItemFilter, limit: int = 50) -> list[Item]:
    query = filters.apply(select(Item)).order_by(Item.created_at.desc(), Item.id).limit(limit)
    return list(session.scalars(query).all())


def count_unfinished(session: Session, item_ids: list[str] | None = None) -> int:
    query = (
        select(func.count())
        .select_from(Item)
        .where(Item.status.in_(status_values(ACTIVE_STATUSES)))
    )
    if item_ids is not None:
        query = query.where(Item.id.in_(item_ids))
    return int(session.scalar(query) or 0)


def iter_results(
    session: Session, filters: ItemFilter, batch_size: int = 1000
) -> Iterator[tuple[Item, Result | None]]:
    """Items with their results, oldest first, fetched in batches (keyset pagination)."""
    last: tuple[datetime, str] | None = None
    while True:
        query = filters.apply(select(Item, Result).outerjoin(Result, Result.item_id == Item.id))
        if last is not None:
            query = query.where(
                or_(Item.created_at > last[0], (Item.created_at == last[0]) & (Item.id > last[1]))
            )
        rows = session.execute(query.order_by(Item.created_at, Item.id).limit(batch_size)).all()
        if not rows:
            return
        yield from ((item, result) for item, result in rows)
        last = (rows[-1][0].created_at, rows[-1][0].id)


def oldest_queued_at(session: Session, pipelines: Iterable[str]) -> dict[str, datetime]:
    """Per pipeline, when its longest-waiting queued item was queued: one probe of
    ``ix_items_pipeline_status_queued`` each, whatever the length of the queue."""
    oldest = {}
    for pipeline in pipelines:
        queued_at = session.scalar(
            select(Item.queued_at)
            .where(
                Item.pipeline == pipeline,
                Item.status == ItemStatus.QUEUED.value,
                Item.queued_at.is_not(None),  # NULLs sort first on SQLite, last on PostgreSQL
            )
            .order_by(Item.queued_at)
            .limit(1)
        )
        if queued_at is not None:
            oldest[pipeline] = queued_at
    return oldest
