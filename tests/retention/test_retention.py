"""Telemetry retention on SQLite and PostgreSQL: the roll-ups equal the aggregates computed
from the raw rows before pruning; pruning removes only rows older than the policy and rolled
up, in batches; a second pass changes nothing; step runs of unfinished items stay."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from conveyor.installation import Installation
from conveyor.retention.maintenance import run_maintenance
from conveyor.retention.policy import (
    HOUR,
    MINUTE,
    RetentionPolicy,
    histogram_quantile,
    latency_histogram,
    period_start,
)
from conveyor.retention.tables import PredictionRollup, StepRunRollup
from conveyor.serving.stats import endpoint_series
from conveyor.serving.tables import Prediction, PredictionFeedback
from conveyor.settings import load_settings
from conveyor.store.models import Item, StepRun

NOW = datetime(2026, 11, 28, 12, 0, 30)
HOURS = 5  # raw rows over the 5 hours before NOW
POLICY = RetentionPolicy(
    predictions_days=2 / 24,  # keep 2 hours of raw predictions
    feedback_days=3 / 24,
    step_runs_days=2 / 24,
    minute_rollups_days=None,
    hour_rollups_days=None,
    batch_rows=150,  # several batches per table
    batch_pause_seconds=0.0,
)


def test_latency_histogram_and_its_quantiles() -> None:
    assert latency_histogram([0.5, 1.0, 3.0, 3000.0]) == [2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4]
    buckets = latency_histogram([7.0] * 98 + [450.0] * 2)
    assert 5 < histogram_quantile(0.5, buckets) <= 10
    assert 400 < histogram_quantile(0.99, buckets) <= 500
    assert histogram_quantile(0.5, [0] * 13) is None


def _predictions(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for _ in range(1500):
        moment = NOW - timedelta(seconds=rng.uniform(0, HOURS * 3600))
        rows.append(
            {
                "id": uuid.uuid4().hex,
                "ts": moment.replace(microsecond=rng.randrange(1000) * 1000),
                "endpoint": rng.choice(["heart", "movies"]),
                "model": "m",
                "version": rng.choice([1, 2]),
                "dataset_sha256": None,
                "features": None,
                "output": None,
                "latency_ms": round(rng.lognormvariate(2, 1.2), 3),
                "request_key": None,
                "arm": rng.choice(["champion", "canary"]),
                "error": "boom" if rng.random() < 0.05 else None,
            }
        )
    return rows


def _expected(rows: list[dict[str, Any]], resolution: str) -> dict[tuple[Any, ...], Any]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        key = (period_start(row["ts"], resolution), row["endpoint"], row["version"], row["arm"])
        groups[key].append(row)
    return {
        key: (
            len(members),
            sum(m["error"] is not None for m in members),
            round(sum(m["latency_ms"] for m in members), 6),
            max(m["latency_ms"] for m in members),
            latency_histogram(m["latency_ms"] for m in members),
        )
        for key, members in groups.items()
    }


def _rollups(installation: Installation, resolution: str) -> dict[tuple[Any, ...], Any]:
    with installation.sessions() as session:
        found = session.scalars(
            select(PredictionRollup).where(PredictionRollup.resolution == resolution)
        ).all()
    return {
        (r.period_start, r.endpoint, r.version, r.arm): (
            r.requests,
            r.errors,
            round(r.latency_sum_ms, 6),
            r.latency_max_ms,
            r.latency_buckets,
        )
        for r in found
    }


def _step_runs(installation: Installation, rng: random.Random) -> None:
    with installation.sessions.begin() as session:
        for n, status in enumerate(["succeeded"] * 30 + ["running"] * 5):
            item = Item(
                id=uuid.uuid4().hex, pipeline="noop", pipeline_version="1", kind="record",
                content_hash=uuid.uuid4().hex, work_dir=f"w{n}", status=status,
            )  # fmt: skip
            session.add(item)
            session.flush()
            finished = NOW - timedelta(seconds=rng.uniform(0, HOURS * 3600))
            run = StepRun(item_id=item.id, step="work", attempt=1, status="succeeded")
            run.started_at, run.finished_at = finished - timedelta(seconds=n + 1), finished
            session.add(run)


@pytest.fixture
def installation(tmp_path: Path, database_url: str) -> Iterator[Installation]:
    built = Installation(load_settings(tmp_path / "home", database_url=database_url))
    yield built
    built.close()


def test_rollups_equal_the_raw_aggregates_and_pruning_keeps_the_policy(installation) -> None:
    rng = random.Random(21)
    rows = _predictions(rng)
    with installation.sessions.begin() as session:
        session.execute(Prediction.__table__.insert(), rows)
        for row in rows[:400]:
            session.add(PredictionFeedback(endpoint=row["endpoint"], prediction_id=row["id"],
                                           kind="label", value=1, ts=row["ts"]))  # fmt: skip
    _step_runs(installation, rng)
    settled = period_start(NOW - timedelta(seconds=POLICY.settle_seconds), MINUTE)
    rolled = [row for row in rows if row["ts"] < settled]  # the last minutes wait to settle

    report = run_maintenance(installation.sessions, POLICY, now=NOW)

    assert _rollups(installation, MINUTE) == _expected(rolled, MINUTE)
    complete_hours = [row for row in rolled if row["ts"] < period_start(settled, HOUR)]
    assert _rollups(installation, HOUR) == _expected(complete_hours, HOUR)
    cutoff = NOW - timedelta(hours=2)
    with installation.sessions() as session:
        kept = set(session.scalars(select(Prediction.id)))
        feedback = session.scalar(select(func.count()).select_from(PredictionFeedback))
        step_runs = session.execute(select(StepRun.finished_at, Item.status).join(Item)).all()
        step_rollups = session.scalar(select(func.sum(StepRunRollup.runs)).where(
            StepRunRollup.resolution == MINUTE))  # fmt: skip
    assert kept == {row["id"] for row in rows if row["ts"] >= cutoff}
    assert report.pruned["predictions"] == len(rows) - len(kept) > 3 * POLICY.batch_rows
    assert feedback == sum(row["ts"] >= NOW - timedelta(hours=3) for row in rows[:400])
    assert all(status == "running" or at >= cutoff for at, status in step_runs)
    assert any(status == "running" and at < cutoff for at, status in step_runs)
    assert step_rollups == 35  # every finished step run, before pruning

    with installation.sessions() as session:  # charts: roll-ups where raw rows are gone
        charted = endpoint_series(session, "heart", NOW - timedelta(hours=HOURS + 1), NOW)
    sent: dict[tuple[datetime, int], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row["endpoint"] == "heart":
            counts = sent[(period_start(row["ts"], MINUTE), row["version"])]
            counts[0] += 1
            counts[1] += row["error"] is not None
    assert {(m["minute"], m["version"]): [m["records"], m["errors"]] for m in charted} == sent
    assert all(m["p50_ms"] <= m["p99_ms"] for m in charted)

    again = run_maintenance(installation.sessions, POLICY, now=NOW)
    assert sum(again.rolled_up.values()) == 0 and sum(again.pruned.values()) == 0
    assert _rollups(installation, MINUTE) == _expected(rolled, MINUTE)


def test_raw_rows_are_never_pruned_before_they_are_rolled_up(installation) -> None:
    rows = _predictions(random.Random(5))
    with installation.sessions.begin() as session:
        session.execute(Prediction.__table__.insert(), rows)
    keep_nothing = RetentionPolicy(predictions_days=1e-9, settle_seconds=HOURS * 3600)
    report = run_maintenance(installation.sessions, keep_nothing, now=NOW)
    assert report.pruned.get("predictions", 0) == 0  # nothing has settled, so nothing goes
    with installation.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == len(rows)


def test_the_maintenance_command_reports_what_it_did(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    installation = Installation(load_settings(home))
    with installation.sessions.begin() as session:
        old = _predictions(random.Random(7))[:50]
        for row in old:
            row["ts"] -= timedelta(days=60)  # past the default 30 days, rolled up first
        session.execute(Prediction.__table__.insert(), old)
    installation.close()
    command = [sys.executable, "-m", "conveyor.cli", "--home", str(home), "maintenance"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=os.environ | {"COLUMNS": "300"}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pruned: predictions 50," in done.stdout, done.stdout


def test_the_schedule_runs_maintenance_until_stopped(installation) -> None:
    import threading
    import time

    from conveyor.retention.maintenance import start_schedule

    rows = _predictions(random.Random(9))[:100]
    for row in rows:
        row["ts"] -= timedelta(days=40)  # rolled up, then past the default 30 days
    with installation.sessions.begin() as session:
        session.execute(Prediction.__table__.insert(), rows)
    stop = threading.Event()
    thread = start_schedule(installation.sessions, RetentionPolicy(), 0.2, stop)
    deadline = time.monotonic() + 30
    while True:
        with installation.read_sessions() as session:  # no write lock: the pass needs it
            if not session.scalar(select(func.count()).select_from(Prediction)):
                break
        assert time.monotonic() < deadline, "the scheduled pass did not prune"
        time.sleep(0.1)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert sum(r.requests for r in _all_rollups(installation, MINUTE)) == len(rows)


def _all_rollups(installation: Installation, resolution: str) -> list[PredictionRollup]:
    with installation.sessions() as session:
        query = select(PredictionRollup).where(PredictionRollup.resolution == resolution)
        return list(session.scalars(query))


def test_postgresql_drops_whole_days_and_deletes_the_rest(installation) -> None:
    from conveyor.retention import partitions

    engine = installation.engine
    with engine.connect() as connection:
        if not partitions.is_partitioned(connection):
            assert engine.dialect.name == "sqlite"
            return  # SQLite has no partitions: the batched deletes above cover it
    assert partitions.ensure_days(engine, NOW, ahead=1, back=91) == 93
    rng = random.Random(3)
    rows = _predictions(rng)
    for row in rows:
        row["ts"] = NOW - timedelta(seconds=rng.uniform(0, 90 * 86400))
    with installation.sessions.begin() as session:
        session.execute(Prediction.__table__.insert(), rows)
    policy = RetentionPolicy(predictions_days=30, batch_rows=150, batch_pause_seconds=0.0)
    report = run_maintenance(installation.sessions, policy, now=NOW)
    cutoff = NOW - timedelta(days=30)  # Oct 29 12:00:30: days to Oct 28 go whole
    with engine.connect() as connection:
        left = [name for name, _, _ in partitions.partitions(connection)]
    assert left[0] == "predictions_p20261029"  # its morning was deleted in batches
    with installation.sessions() as session:
        kept = set(session.scalars(select(Prediction.id)))
    assert kept == {row["id"] for row in rows if row["ts"] >= cutoff}
    assert report.pruned["predictions"] == len(rows) - len(kept)
    settled = period_start(NOW - timedelta(seconds=policy.settle_seconds), MINUTE)
    assert _rollups(installation, MINUTE) == _expected(
        [row for row in rows if row["ts"] < settled], MINUTE
    )
