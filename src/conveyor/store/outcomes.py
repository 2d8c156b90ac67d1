"""Committing what the controller learned, in one fenced transaction per batch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from conveyor.core.lifecycle import ItemStatus, StepStatus
from conveyor.store.leases import LeaseHolder, owned_items
from conveyor.store.models import Item, Result, StepRun

logger = logging.getLogger(__name__)


@dataclass
class StartedRun:
    item_id: str
    step: str
    attempt: int
    submitted_at: datetime
    run_id: int | None = None  # filled in by the commit


@dataclass
class FinishedRun:
    item_id: str
    run_id: int
    status: StepStatus
    output: Any = None
    error: str | None = None
    logs: str | None = None
    worker: str | None = None
    node_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pipeline: str = ""  # pipeline and step label metrics; the store does not write them
    step: str = ""


@dataclass
class ItemChange:
    item_id: str
    status: ItemStatus
    error: str | None = None
    next_attempt_at: datetime | None = None
    result: Any = None
    pipeline: str = ""
    pipeline_version: str = ""
    step: str = ""  # the failed step, for a retry
    store_result: Callable[[Session, str, Any], None] | None = None


@dataclass
class CommitBatch:
    """Everything one controller loop iteration writes, applied all-or-nothing."""

    started: list[StartedRun] = field(default_factory=list)
    finished: list[FinishedRun] = field(default_factory=list)
    changes: list[ItemChange] = field(default_factory=list)

    def item_ids(self) -> set[str]:
        return (
            {s.item_id for s in self.started}
            | {f.item_id for f in self.finished}
            | {c.item_id for c in self.changes}
        )

    def __bool__(self) -> bool:
        return bool(self.started or self.finished or self.changes)


def apply_batch(
    session: Session, holder: LeaseHolder, batch: CommitBatch, held: dict[str, int], now: datetime
) -> set[str]:
    """Write ``batch`` for the items still owned; returns the ids whose lease was lost."""
    touched = {i: held[i] for i in batch.item_ids() if i in held}
    owned, _ = owned_items(session, holder, touched)
    lost = set(touched) - owned
    _finish_runs(session, [f for f in batch.finished if f.item_id in owned])
    _change_items(session, [c for c in batch.changes if c.item_id in owned], holder, now)
    _insert_started(session, [s for s in batch.started if s.item_id in owned])
    return lost


def _insert_started(session: Session, started: list[StartedRun]) -> None:
    if not started:
        return
    ids = session.scalars(
        insert(StepRun).returning(StepRun.id, sort_by_parameter_order=True),
        [
            {
                "item_id": s.item_id,
                "step": s.step,
                "attempt": s.attempt,
                "status": StepStatus.RUNNING.value,
                "submitted_at": s.submitted_at,
            }
            for s in started
        ],
    ).all()
    for run, run_id in zip(started, ids, strict=True):
        run.run_id = run_id


def _finish_runs(session: Session, finished: list[FinishedRun]) -> None:
    if not finished:
        return
    # ORM bulk UPDATE by primary key: one statement, executed for many rows.
    session.execute(
        update(StepRun)
        .where(StepRun.status == StepStatus.RUNNING.value)
        .execution_options(synchronize_session=None),
        [
            {
                "id": run.run_id,
                "status": run.status.value,
                "output": run.output,
                "error": run.error,
                "logs": run.logs,
                "worker": run.worker,
                "node_id": run.node_id,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
            }
            for run in finished
        ],
    )


def _change_items(
    session: Session, changes: list[ItemChange], holder: LeaseHolder, now: datetime
) -> None:
    for change in changes:
        if change.status == ItemStatus.SUCCEEDED and change.store_result is not None:
            _store_result_tables(session, change)
    results = [
        {
            "item_id": c.item_id,
            "pipeline": c.pipeline,
            "pipeline_version": c.pipeline_version,
            "result": c.result,
            "created_at": now,
        }
        for c in changes
        if c.status == ItemStatus.SUCCEEDED
    ]
    if results:
        session.execute(insert(Result), results)
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        values = _item_values(change, now)
        by_shape.setdefault(tuple(sorted(values)), []).append(values)
    for rows in by_shape.values():
        session.execute(
            update(Item)
            .where(Item.lease_owner == holder.owner)
            .execution_options(synchronize_session=None),
            rows,
        )


def _store_result_tables(session: Session, change: ItemChange) -> None:
    """Run the pipeline's table writer in a savepoint; a failure fails only this item."""
    assert change.store_result is not None
    try:
        with session.begin_nested():
            change.store_result(session, change.item_id, change.result)
    except Exception as error:
        logger.exception("storing the result tables of item %s failed", change.item_id)
        change.status = ItemStatus.FAILED
        change.error = (
            f"the result could not be stored in the {change.pipeline} tables: "
            f"{type(error).__name__}: {error}"
        )
        change.result = None


def _item_values(change: ItemChange, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": change.item_id,
        "status": change.status.value,
        "updated_at": now,
    }
    if change.status in (ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.CANCELLED):
        values |= {
            "finished_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
            "error": change.error,
        }
    if change.status == ItemStatus.RETRYING:
        values |= {"next_attempt_at": change.next_attempt_at, "error": change.error}
    return values
