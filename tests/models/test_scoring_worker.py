"""An API scoring job whose process died (no heartbeat) is taken over by a ``conveyor up``'s
scoring worker and finished with every row once; a job with a live heartbeat and the jobs of
``conveyor score`` are left alone, and only one process wins a claim."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow.dataset as arrow_dataset
import pytest
from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # the serving tests' models
from serving_helpers import register_heart

from conveyor.models.registry import ModelRegistry
from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_rows
from conveyor.scoring import jobs
from conveyor.scoring.service import BatchScoring, ScoreRequest
from conveyor.scoring.tables import ScoringJob
from conveyor.scoring.worker import ScoringWorker
from conveyor.store.models import utcnow

ROWS = 3000


@pytest.fixture(scope="module")
def scoring(tmp_path_factory: pytest.TempPathFactory, ray_cluster: str) -> Iterator[BatchScoring]:
    from conveyor.installation import Installation
    from conveyor.settings import load_settings

    home = tmp_path_factory.mktemp("worker-home")
    register_heart(ModelRegistry.for_home(home, None), home / "work", seed=1)
    installation = Installation(load_settings(home, database_url=f"sqlite:///{home}/c.db"))
    yield BatchScoring(installation)
    installation.close()


def planned_job(scoring: BatchScoring, folder: Path, requested_by: str, idle: float) -> str:
    """A job planned as the API (or the command) plans it, whose process then stopped:
    nothing scored, its heartbeat ``idle`` seconds old."""
    folder.mkdir()
    rows = synthetic_rows(ROWS, seed=5, missing_rate=0.05)
    lines = [",".join(["id", *HEART_SCHEMA.names])]
    lines += [",".join([str(n), *row]) for n, row in enumerate(rows)]
    (folder / "visits.csv").write_text("\n".join(lines) + "\n")
    request = ScoreRequest(
        "heart", (str(folder / "visits.csv"),), str(folder / "scored"), columns=("id",),
        block_size=16 * 1024, parallelism=2, requested_by=requested_by,
    )  # fmt: skip
    job_id = scoring.prepare(request).job_id
    with scoring.installation.sessions.begin() as session:
        session.execute(
            update(ScoringJob)
            .where(ScoringJob.id == job_id)
            .values(updated_at=utcnow() - timedelta(seconds=idle))
        )
    return job_id


def test_a_stopped_api_job_is_taken_over_and_finished(
    scoring: BatchScoring, tmp_path: Path
) -> None:
    stopped = planned_job(scoring, tmp_path / "stopped", "api:ada", idle=120)
    alive = planned_job(scoring, tmp_path / "alive", "api:ada", idle=1)
    command = planned_job(scoring, tmp_path / "command", "cli", idle=120)
    worker = ScoringWorker(scoring.installation, stale_seconds=60)
    assert worker.adopt_once() == [stopped]
    view = scoring.status(stopped)
    assert (view.status, view.rows_scored, view.parts_done) == ("succeeded", ROWS, view.parts_total)
    ids = arrow_dataset.dataset(tmp_path / "stopped" / "scored").to_table().column("id")
    assert sorted(map(int, ids.to_pylist())) == list(range(ROWS))
    for untouched in (alive, command):
        assert (scoring.status(untouched).status, scoring.status(untouched).rows_scored) == (
            "running", 0,
        )  # fmt: skip
    assert worker.adopt_once() == []


def test_one_process_alone_wins_a_claim(scoring: BatchScoring, tmp_path: Path) -> None:
    job_id = planned_job(scoring, tmp_path / "raced", "api:ada", idle=120)
    sessions = scoring.installation.sessions
    with sessions() as session:
        [(found, seen)] = [c for c in jobs.stale_jobs(session, "api:", 60) if c[0] == job_id]
    with sessions.begin() as session:
        assert jobs.claim(session, found, seen)
    with sessions.begin() as session:
        assert not jobs.claim(session, found, seen)
    with sessions() as session:
        assert job_id not in [c[0] for c in jobs.stale_jobs(session, "api:", 60)]
