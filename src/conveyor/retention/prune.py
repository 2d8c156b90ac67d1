"""Deleting old rows in small batches: each batch is its own short transaction (a few
thousand rows by primary key), with a pause between batches, so serving's inserts and the
API's reads never wait long for a lock."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.core.lifecycle import FINAL_STATUSES
from conveyor.retention.tables import PredictionRollup, StepRunRollup
from conveyor.serving.tables import Prediction, PredictionFeedback
from conveyor.store.models import Item, StepRun


def delete_in_batches(
    sessions: sessionmaker[Session],
    key: Any,
    oldest_first: Any,
    conditions: list[Any],
    batch_rows: int,
    pause_seconds: float,
) -> int:
    """Delete the rows matching ``conditions``, ``batch_rows`` at a time; returns how many."""
    table = key.table
    deleted = 0
    while True:
        chosen = select(key).where(*conditions).order_by(oldest_first).limit(batch_rows)
        with sessions.begin() as session:
            ids = list(session.scalars(chosen))
            if ids:
                # The conditions again: on a partitioned log they confine the delete to the
                # partitions in range (the key alone would probe every day's index).
                session.execute(delete(table).where(key.in_(ids), *conditions))
        deleted += len(ids)
        if len(ids) < batch_rows:
            return deleted
        time.sleep(pause_seconds)


def prune_predictions(sessions: sessionmaker[Session], before: datetime, **batching: Any) -> int:
    conditions = [Prediction.ts < before]
    return delete_in_batches(sessions, Prediction.id, Prediction.ts, conditions, **batching)


def prune_feedback(sessions: sessionmaker[Session], before: datetime, **batching: Any) -> int:
    conditions = [PredictionFeedback.ts < before]
    return delete_in_batches(
        sessions, PredictionFeedback.id, PredictionFeedback.id, conditions, **batching
    )


def prune_step_runs(sessions: sessionmaker[Session], before: datetime, **batching: Any) -> int:
    """Step runs that finished before ``before``, of items in a final state only."""
    finished_items = select(Item.id).where(Item.status.in_([str(s) for s in FINAL_STATUSES]))
    conditions = [StepRun.finished_at < before, StepRun.item_id.in_(finished_items)]
    return delete_in_batches(sessions, StepRun.id, StepRun.id, conditions, **batching)


def prune_rollups(
    sessions: sessionmaker[Session],
    table: type[PredictionRollup] | type[StepRunRollup],
    resolution: str,
    before: datetime,
    **batching: Any,
) -> int:
    conditions = [table.resolution == resolution, table.period_start < before]
    return delete_in_batches(sessions, table.id, table.id, conditions, **batching)
