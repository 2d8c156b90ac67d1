"""The Ray head dies while PostgreSQL is down: `conveyor up` notices the lost head during the
outage, holds the hand-back of its items (the lost step runs) until the store returns, then
rejoins the restarted head and re-runs exactly the steps without a committed success. Every
(item, step) succeeds once in the store. The head and the PostgreSQL cluster are the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conveyor.installation import Installation
from conveyor.settings import load_settings
from conveyor.store.models import Item, Result, utcnow
from support.polling import count, each_step_succeeded_once, step_runs, wait_for
from support.ray_head import RayHead
from support.throwaway_postgres import ThrowawayPostgres, new_database, throwaway_postgres
from support.up import ConveyorUp

ITEMS = 2  # one per CPU of the head: both hold steps run at once
HOLD_SECONDS = 8.0  # long enough to be in flight when the head dies
STEPS = ("hold", "after_hold")  # the killable pipeline
_SUCCEEDED = select(func.count()).select_from(Item).where(Item.status == "succeeded")


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as started:
        yield started


@pytest.mark.slow
def test_a_head_lost_while_the_store_is_down_reruns_its_steps_once(
    cluster: ThrowawayPostgres, tmp_path: Path
) -> None:
    database_url = new_database(cluster)
    settings = load_settings(
        tmp_path / "home", database_url=database_url, pipelines=["support.pipelines"]
    )
    installation = Installation(settings)
    records = [{"seconds": HOLD_SECONDS, "n": n} for n in range(ITEMS)]
    installation.submitter.submit_records("killable", records)
    head = RayHead(num_cpus=2)
    up = None
    try:
        head.start()
        env = {
            "CONVEYOR_DATABASE_URL": database_url,
            "CONVEYOR_PIPELINES": "support.pipelines",
            "CONVEYOR_LEASE_SECONDS": "5",
            **head.env,
        }
        options = ("--no-inbox", "--no-auth", "--ray-address", head.address)
        up = ConveyorUp(settings.home, env, *options)
        # Each hold step leaves pid-<attempt>.txt in its work folder as it starts.
        wait_for(
            lambda: len(list(settings.home.rglob("pid-1.txt"))) == ITEMS,
            120,
            f"every hold step running on Ray: {up.output()}",
        )
        outage_started = utcnow()
        cluster.stop()
        head.kill()  # the steps in flight die with it; the store cannot hear of it yet
        head.start()  # as its service manager would, on the same port
        wait_for(lambda: "lost the Ray cluster" in up.output(), 60, "the head's loss noticed")
        cluster.start()
        outage_ended = utcnow()
        wait_for(
            lambda: count(installation, _SUCCEEDED) == ITEMS, 120, f"every item: {up.output()}"
        )
        done = (utcnow() - outage_ended).total_seconds()
        print(
            f"store down and head lost for {(outage_ended - outage_started).total_seconds():.1f}"
            f" s; every item succeeded {done:.1f} s after the store returned"
        )
        assert up.stop() == 0, up.output()
    finally:
        if up is not None and up.process.poll() is None:
            up.process.kill()
        head.close()

    runs = step_runs(installation)
    successes = each_step_succeeded_once(runs, ITEMS * len(STEPS))
    assert count(installation, select(func.count()).select_from(Result)) == ITEMS
    lost = [run for run in runs if run.status == "lost"]
    # Exactly the two hold steps in flight were lost, once each; nothing else.
    holds = sorted(key for key in successes if key[1] == "hold")
    assert sorted((run.item_id, run.step) for run in lost) == holds, lost
    for run in lost:
        # Noticed during the outage (the hand-back's time), written after it, re-run once.
        assert run.finished_at is not None
        assert outage_started < run.finished_at < outage_ended, (run, outage_started)
        assert "Ray cluster was lost" in (run.error or "")
        assert (run.item_id, run.step) in successes
    assert not [run for run in runs if run.status in ("failed", "running")]
    installation.close()
