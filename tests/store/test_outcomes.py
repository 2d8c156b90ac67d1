"""Committing a batch: the store answers with a report (run ids, results it could not store,
leases lost) and leaves the controller's batch as it was."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.core.commits import CommitBatch, ItemChange, StartedRun
from conveyor.core.lifecycle import ItemStatus
from conveyor.store.leases import ClaimedItem, LeaseHolder, claim_next_items
from conveyor.store.models import Item, Result, StepRun, utcnow
from conveyor.store.outcomes import apply_batch
from conveyor.store.submissions import NewItem, insert_items

HOLDER = LeaseHolder("test-controller", lease_seconds=300)


def _claim(sessions: sessionmaker[Session], count: int) -> list[ClaimedItem]:
    news = [NewItem("noop", "1", "record", f"{n:064x}", f"work/{n}") for n in range(count)]
    with sessions.begin() as session:
        insert_items(session, news)
    with sessions.begin() as session:
        return claim_next_items(session, HOLDER, count, utcnow())


def _refuse(_session: Session, _item_id: str, _result: Any) -> None:
    raise ValueError("no room for this row")


def test_the_report_says_what_was_written_and_the_batch_is_unchanged(
    sessions: sessionmaker[Session],
) -> None:
    kept, refused, taken = _claim(sessions, 3)
    now = utcnow()
    started = StartedRun(kept.id, "a", 1, now)
    batch = CommitBatch(
        started=[started, StartedRun(taken.id, "a", 1, now)],
        changes=[
            ItemChange(kept.id, ItemStatus.SUCCEEDED, result={"n": 1}, pipeline="noop"),
            ItemChange(
                refused.id,
                ItemStatus.SUCCEEDED,
                result={"n": 2},
                pipeline="noop",
                store_result=_refuse,
            ),
        ],
    )
    before = copy.deepcopy(batch)
    held = {kept.id: kept.generation, refused.id: refused.generation, taken.id: 99}
    with sessions.begin() as session:
        report = apply_batch(session, HOLDER, batch, held, now)

    assert batch == before
    assert report.lost == {taken.id}  # another generation: someone else's lease now
    assert set(report.unstored) == {refused.id}
    assert (
        "could not be stored in the noop tables: ValueError: no room" in report.unstored[refused.id]
    )
    assert report.written_status(batch.changes[1]) == ItemStatus.FAILED
    with sessions() as session:
        runs = session.execute(select(StepRun.id, StepRun.item_id)).all()
        statuses = {row.id: row.status for row in session.execute(select(Item.id, Item.status))}
        results = session.scalars(select(Result.item_id)).all()
    assert runs == [(report.run_ids[started], kept.id)]
    assert statuses == {kept.id: "succeeded", refused.id: "failed", taken.id: "running"}
    assert results == [kept.id]
