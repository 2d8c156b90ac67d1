"""Committing what the controller learned, in one fenced transaction per batch."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from conveyor.core.commits import CommitBatch, CommitReport, FinishedRun, ItemChange, StartedRun
from conveyor.core.lifecycle import FINAL_STATUSES, ItemStatus, StepStatus
from conveyor.store.leases import LeaseHolder, owned_items
from conveyor.store.models import Item, Result, StepRun

logger = logging.getLogger(__name__)

# Called inside the commit with the item changes that made items final, as written (a result
# the pipeline's tables refused is a failure here too). What a hook writes commits or rolls back
# with the items: the streams outbox uses this so the store needs not know about streams.
FinalItemsHook = Callable[[Session, Sequence[ItemChange], datetime], None]


def apply_batch(
    session: Session,
    holder: LeaseHolder,
    batch: CommitBatch,
    held: dict[str, int],
    now: datetime,
    final_hooks: Sequence[FinalItemsHook] = (),
) -> CommitReport:
    """Write ``batch`` for the items still owned (``held``: id -> lease generation)."""
    touched = {i: held[i] for i in batch.item_ids() if i in held}
    owned, _ = owned_items(session, holder, touched)
    _finish_runs(session, [f for f in batch.finished if f.item_id in owned])
    changes = [c for c in batch.changes if c.item_id in owned]
    unstored = _change_items(session, changes, holder, now, final_hooks)
    run_ids = _insert_started(session, [s for s in batch.started if s.item_id in owned])
    return CommitReport(run_ids, unstored, frozenset(set(touched) - owned))


def _insert_started(session: Session, started: list[StartedRun]) -> dict[StartedRun, int]:
    if not started:
        return {}
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
    return dict(zip(started, ids, strict=True))


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
    session: Session,
    changes: list[ItemChange],
    holder: LeaseHolder,
    now: datetime,
    final_hooks: Sequence[FinalItemsHook] = (),
) -> dict[str, str]:
    """Write item changes; returns the items whose result tables refused their result."""
    unstored = _store_result_tables(session, changes)
    changes = [
        _failed_to_store(c, unstored[c.item_id]) if c.item_id in unstored else c for c in changes
    ]
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
    final = [c for c in changes if c.status in FINAL_STATUSES]
    for hook in final_hooks if final else ():
        hook(session, final, now)
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
    return unstored


def _store_result_tables(session: Session, changes: list[ItemChange]) -> dict[str, str]:
    """Run each succeeded item's table writer in a savepoint; a failure fails only that item.

    Returns the items whose rows were not written, with why."""
    unstored: dict[str, str] = {}
    for change in changes:
        if change.status != ItemStatus.SUCCEEDED or change.store_result is None:
            continue
        try:
            with session.begin_nested():
                change.store_result(session, change.item_id, change.result)
        except Exception as error:
            logger.exception("storing the result tables of item %s failed", change.item_id)
            unstored[change.item_id] = (
                f"the result could not be stored in the {change.pipeline} tables: "
                f"{type(error).__name__}: {error}"
            )
    return unstored


def _failed_to_store(change: ItemChange, error: str) -> ItemChange:
    return dataclasses.replace(change, status=ItemStatus.FAILED, error=error, result=None)


def _item_values(change: ItemChange, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": change.item_id,
        "status": change.status.value,
        "updated_at": now,
    }
    if change.status in FINAL_STATUSES:
        values |= {
            "finished_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
            "error": change.error,
        }
    if change.status == ItemStatus.RETRYING:
        values |= {"next_attempt_at": change.next_attempt_at, "error": change.error}
    return values
