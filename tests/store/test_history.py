"""The store's recent past for the dashboard: step run times count runs that ran to an end."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from conveyor.store.history import queue_movements, recent_step_run_times
from conveyor.store.models import StepRun, utcnow
from conveyor.store.submissions import NewItem, insert_items


def test_run_times_leave_out_runs_that_did_not_end_and_movements_count_new_items(
    sessions: sessionmaker[Session],
) -> None:
    start = utcnow()
    with sessions.begin() as session:
        (item,) = insert_items(session, [NewItem("noop", "1", "record", "0" * 64, "work/0")])
        session.flush()
        for attempt, (status, seconds) in enumerate(
            [("failed", 1.5), ("lost", 9.0), ("cancelled", 9.0), ("succeeded", 2.0)], start=1
        ):
            session.add(
                StepRun(
                    item_id=item.id,
                    step="a",
                    attempt=attempt,
                    status=status,
                    started_at=start,
                    finished_at=start + timedelta(seconds=seconds),
                )
            )
    with sessions() as session:
        times = recent_step_run_times(session, since=start, limit=10)
        movements = queue_movements(session, start - timedelta(seconds=1), utcnow())
    assert sorted((t.seconds, t.failed) for t in times) == [(1.5, True), (2.0, False)]
    assert {(t.pipeline, t.step) for t in times} == {("noop", "a")}
    assert (movements.waiting_at_start, len(movements.created_at)) == (0, 1)
