"""What a PostgreSQL outage does to users, measured: a cluster of its own is stopped for
``--seconds`` (60 by default) while a controller runs items, a client polls the API and
another predicts on the heart endpoint; then it is started again and nothing else is done.

Prints, as JSON: the API's answers by status during and after the outage and how long after
the store returned it answered 200 again; the predictions answered and failed, the rows
spooled and how long the spool took to be written back, and whether the log holds every
answered prediction exactly once; the items' final states, result rows, step runs by status
(``lost`` would mean a step ran twice), the steps that finished during the outage (their
outcomes held, committed after) and how long after the store returned the controller's first
commit came (read from the controller's own state).

    .venv/bin/python benchmarks/db_outage.py --seconds 60

Never touches the shared PostgreSQL on 5432: the cluster is initdb'ed in a temporary folder
(tests/support/throwaway_postgres.py). The API and serving run in this process through
Starlette's test client (the same application ``conveyor up`` and ``conveyor serve`` run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "serving"))
# Ray's workers import the tests' pipelines (support.pipelines) too.
PATHS = [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]
os.environ["PYTHONPATH"] = os.pathsep.join(path for path in PATHS if path)

import ray  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from serving_helpers import register_heart  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from conveyor.api.app import create_app  # noqa: E402
from conveyor.api.routes.endpoints import serving_of  # noqa: E402
from conveyor.auth.service import create_token  # noqa: E402
from conveyor.installation import Installation  # noqa: E402
from conveyor.models.registry import ModelRegistry  # noqa: E402
from conveyor.serving.tables import Prediction  # noqa: E402
from conveyor.settings import load_settings  # noqa: E402
from conveyor.store.models import Item, Result, StepRun, utcnow  # noqa: E402
from support.throwaway_postgres import new_database, throwaway_postgres, wait_for  # noqa: E402

HEART = {
    "age": 61.0, "sex": 1.0, "cp": 4.0, "trestbps": 140.0, "chol": 260.0, "fbs": 0.0,
    "restecg": 2.0, "thalach": 120.0, "exang": 1.0, "oldpeak": 2.5, "slope": 2.0,
    "ca": 2.0, "thal": 7.0,
}  # fmt: skip


class Poller:
    """Calls ``request`` every ``interval`` seconds in a thread; keeps (time, status, body)."""

    def __init__(self, request: Callable[[], Any], interval: float) -> None:
        self.request = request
        self.interval = interval
        self.answers: list[tuple[float, int, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            answer = self.request()
            self.answers.append((time.monotonic(), answer.status_code, answer))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def statuses(self, start: float, end: float) -> dict[str, int]:
        found = Counter(str(s) for t, s, _ in self.answers if start <= t < end)
        return dict(sorted(found.items()))

    def first_ok_after(self, moment: float) -> float | None:
        return next((t - moment for t, s, _ in self.answers if t >= moment and s < 300), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the outage")
    parser.add_argument("--items", type=int, default=60, help="items submitted before it")
    arguments = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with throwaway_postgres() as cluster, tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        register_heart(ModelRegistry.for_home(home, None), home / "work")
        settings = load_settings(
            home, database_url=new_database(cluster), pipelines=["support.pipelines"]
        )
        print(json.dumps(measure(cluster, Installation(settings), arguments), indent=2))
    ray.shutdown()


def measure(cluster: Any, installation: Installation, arguments: argparse.Namespace) -> dict:
    with installation.sessions.begin() as session:
        token = create_token(session, "bench", "operator")
    app = create_app(installation, auth_required=True)
    service = serving_of(app)
    api = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    records = [{"seconds": 1.0, "n": n} for n in range(arguments.items)]
    ids = [s.item_id for s in installation.submitter.submit_records("killable", records)]
    controller = installation.controller()
    stop = threading.Event()
    runner = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    runner.start()
    listing = Poller(lambda: api.get("/api/v1/items?limit=1"), 0.1)
    predicting = Poller(lambda: api.post("/api/v1/endpoints/heart/predict", json=HEART), 0.02)
    wait_for(lambda: _succeeded(installation) >= 4, 120, "the first items")
    stopped, outage = time.monotonic(), [utcnow()]
    cluster.stop()
    time.sleep(arguments.seconds)  # the outage
    cluster.start()
    started = time.monotonic()
    outage.append(utcnow())
    wait_for(lambda: not controller.outage.store_down, 120, "the first commit")
    first_commit = time.monotonic() - started
    wait_for(lambda: not service.log.spool.files(), 120, "the spool written back")
    spool_back = time.monotonic() - started
    wait_for(lambda: _succeeded(installation) == len(ids), 600, "every item")
    all_done = time.monotonic() - started
    listing.stop()
    predicting.stop()
    service.close()  # a last flush of the log, and its loops stop
    stop.set()
    runner.join(timeout=60)
    times = {"stopped": stopped, "started": started, "first_commit": first_commit}
    times |= {"spool_back": spool_back, "all_done": all_done}
    return _report(installation, len(ids), listing, predicting, times, outage)


def _report(
    installation: Installation,
    items: int,
    listing: Poller,
    predicting: Poller,
    times: dict[str, float],
    outage: list[datetime],
) -> dict:
    answered = [
        p["id"] for _, s, a in predicting.answers if s == 200 for p in a.json()["predictions"]
    ]
    with installation.sessions() as session:
        logged = list(session.scalars(select(Prediction.id)))
        runs = dict(session.execute(select(StepRun.status, func.count()).group_by("status")).all())
        items_query = select(Item.status, func.count()).group_by("status")
        by_status = dict(session.execute(items_query).all())
        results = session.scalar(select(func.count()).select_from(Result))
        during = StepRun.finished_at.between(*outage)
        held = session.scalar(select(func.count()).select_from(StepRun).where(during))
    stopped, started, end = times["stopped"], times["started"], time.monotonic()
    return {
        "outage_seconds": round(started - stopped, 1),
        "api": {
            "during": listing.statuses(stopped, started),
            "after": listing.statuses(started, end),
            "first_200_after_store_back_s": _round(listing.first_ok_after(started)),
        },
        "serving": {
            "during": predicting.statuses(stopped, started),
            "after": predicting.statuses(started, end),
            "answered": len(answered),
            "logged_rows": len(logged),
            "logged_distinct": len(set(logged)),
            "every_answer_logged_once": sorted(logged) == sorted(answered),
            "spool_written_back_after_s": round(times["spool_back"], 2),
        },
        "engine": {
            "items": items,
            "items_by_status": by_status,
            "result_rows": results,
            "step_runs_by_status": runs,
            "steps_finished_during_outage_committed_after": held,
            "first_commit_after_store_back_s": round(times["first_commit"], 2),
            "all_items_final_after_store_back_s": round(times["all_done"], 1),
        },
    }


def _succeeded(installation: Installation) -> int:
    query = select(func.count()).select_from(Item).where(Item.status == "succeeded")
    with installation.sessions() as session:
        return int(session.scalar(query) or 0)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


if __name__ == "__main__":
    main()
