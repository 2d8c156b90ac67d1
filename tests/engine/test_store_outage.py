"""PostgreSQL stops while items run under two controllers: each keeps the outcomes of its steps
in flight, claims and starts nothing, and commits everything once the store is back, and
neither takes over the other's items whose leases expired meanwhile; nothing is lost, nothing
is done twice. The cluster is the test's own (the shared one is never stopped)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conveyor.installation import Installation
from conveyor.settings import load_settings
from conveyor.store.models import Item, Result, StepRun, utcnow
from support.polling import count, wait_for
from support.throwaway_postgres import ThrowawayPostgres, new_database, throwaway_postgres

TEST_PIPELINES = "support.pipelines"
OUTAGE_SECONDS = 6.0  # longer than the 5 s leases: they expire while the store is away
ITEMS = 16


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as started:
        yield started


def test_a_store_outage_mid_run_loses_and_repeats_nothing(
    cluster: ThrowawayPostgres, tmp_path: Path, ray_cluster: str
) -> None:
    settings = load_settings(
        tmp_path / "home",
        database_url=new_database(cluster),
        pipelines=[TEST_PIPELINES],
        lease_seconds=5.0,
        poll_interval_seconds=0.02,
    )
    installation = Installation(settings)
    records = [{"seconds": 1.0, "n": n} for n in range(ITEMS)]
    ids = [s.item_id for s in installation.submitter.submit_records("killable", records)]
    succeeded = select(func.count()).select_from(Item).where(Item.status == "succeeded")
    stop = threading.Event()
    runners = [
        threading.Thread(target=installation.controller().run, args=(stop,)) for _ in range(2)
    ]
    for runner in runners:
        runner.start()
    try:
        wait_for(lambda: count(installation, succeeded) >= 1, 90, "the first item")
        outage_started = utcnow()
        cluster.stop()
        time.sleep(OUTAGE_SECONDS)  # the outage under test, not a wait for something
        cluster.start()
        outage_ended = utcnow()
        wait_for(lambda: count(installation, succeeded) == ITEMS, 120, "every item")
    finally:
        stop.set()
        for runner in runners:
            runner.join(timeout=60)
        installation.close()
    installation = Installation(settings)
    assert count(installation, select(func.count()).select_from(Item)) == ITEMS
    results = select(func.count(func.distinct(Result.item_id))).where(Result.item_id.in_(ids))
    assert count(installation, results) == ITEMS
    assert count(installation, select(func.count()).select_from(Result)) == ITEMS
    runs = select(StepRun.status, func.count()).group_by(StepRun.status)
    with installation.sessions() as session:
        by_status = dict(session.execute(runs).all())
    # Every step ran exactly once: none was lost and re-run (as after a takeover), none failed.
    assert by_status == {"succeeded": 2 * ITEMS}
    during = (
        select(func.count())
        .select_from(StepRun)
        .where(StepRun.finished_at > outage_started, StepRun.finished_at < outage_ended)
    )
    assert count(installation, during) >= 1, "no step finished while the store was away"
    installation.close()
