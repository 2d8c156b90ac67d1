"""Telemetry retention on PostgreSQL while the heart endpoint serves at load.

1. A fresh PostgreSQL schema and Conveyor home with a heart champion; ``--rows`` prediction
   log rows spread evenly over the last ``--days`` days, written with COPY.
2. Roll-ups (per minute, then per hour) of every settled row, timed; their sums are checked
   against the raw rows (requests, errors, latency sum) before anything is pruned.
3. ``conveyor serve`` (one worker) of that home; ``wrk`` POSTs heart records at
   ``--concurrency`` for ``--duration`` seconds: once without pruning, once while the raw rows
   older than ``--keep-days`` are pruned as maintenance does (whole daily partitions
   dropped, the rest deleted in batches of ``--batch-rows`` with ``--pause``) in this process,
   and once more without (to see drift). p50 and p99 of each, and the p99 during pruning
   against the mean of the two baselines (target: within 10 %).

Usage: ``.venv/bin/python benchmarks/retention.py [--rows 300000] [--days 60] [--keep-days 30]
[--duration 20] [--concurrency 8] [--batch-rows 2000] [--pause 0.05]``; the issue's figure
is ``--rows 10000000``. Needs PostgreSQL on loopback (``CONVEYOR_TEST_POSTGRES``) and wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "serving"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serving_helpers import register_heart  # noqa: E402
from serving_processes import ServerProcess, run_wrk, wait_until_answering  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from conveyor.installation import Installation  # noqa: E402
from conveyor.models.registry import ModelRegistry  # noqa: E402
from conveyor.retention.maintenance import run_maintenance  # noqa: E402
from conveyor.retention.partitions import drop_days_before, ensure_days  # noqa: E402
from conveyor.retention.policy import RetentionPolicy  # noqa: E402
from conveyor.retention.prune import prune_predictions  # noqa: E402
from conveyor.retention.rollups import watermark  # noqa: E402
from conveyor.settings import load_settings  # noqa: E402
from conveyor.store.models import utcnow  # noqa: E402
from support.up import free_port  # noqa: E402

ADMIN_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
HEART = {
    "age": 61.0, "sex": 1.0, "cp": 4.0, "trestbps": 140.0, "chol": 260.0, "fbs": 0.0,
    "restecg": 2.0, "thalach": 120.0, "exang": 1.0, "oldpeak": 2.5, "slope": 2.0,
    "ca": 2.0, "thal": 7.0,
}  # fmt: skip
ROLL_UP_ONLY = RetentionPolicy(
    predictions_days=None,
    feedback_days=None,
    step_runs_days=None,
    minute_rollups_days=None,
    hour_rollups_days=None,
)


def fill(installation: Installation, rows: int, days: float) -> float:
    """COPY ``rows`` predictions spread over the last ``days``; returns seconds taken."""
    started = time.monotonic()
    now, span = utcnow(), timedelta(days=days)
    connection = installation.engine.raw_connection()
    try:
        cursor = connection.cursor()
        columns = "id, ts, endpoint, model, version, latency_ms, arm, error"
        with cursor.copy(f"COPY predictions ({columns}) FROM STDIN") as copy:
            for n in range(rows):
                moment = now - span + span * (n / rows)
                error = "boom" if n % 97 == 0 else None
                copy.write_row(
                    (uuid.uuid4().hex, moment, "heart", "heart", 1, 2 + n % 40, "champion", error)
                )
        connection.commit()
        cursor.execute("ANALYZE predictions")
        connection.commit()
    finally:
        connection.close()
    return time.monotonic() - started


def check_rollups(installation: Installation) -> dict[str, float]:
    with installation.sessions() as session:
        until = watermark(session, "predictions:minute")
    query = """
        SELECT (SELECT count(*) FROM predictions WHERE ts < :until),
               (SELECT count(*) FROM predictions WHERE ts < :until AND error IS NOT NULL),
               (SELECT sum(latency_ms) FROM predictions WHERE ts < :until),
               (SELECT sum(requests) FROM prediction_rollups WHERE resolution = 'minute'),
               (SELECT sum(errors) FROM prediction_rollups WHERE resolution = 'minute'),
               (SELECT sum(latency_sum_ms) FROM prediction_rollups WHERE resolution = 'minute'),
               (SELECT sum(requests) FROM prediction_rollups WHERE resolution = 'hour')
    """
    with installation.engine.connect() as connection:
        raw, errors, latency, minutes, minute_errors, minute_latency, hours = connection.execute(
            text(query), {"until": until}
        ).one()
    assert (raw, errors) == (minutes, minute_errors), (raw, errors, minutes, minute_errors)
    assert abs(float(latency) - float(minute_latency)) < 1e-6 * float(latency)
    return {"rolled_up_rows": raw, "hour_rollup_requests": hours}


def load(url: str, bodies: Path, concurrency: int, seconds: float, group: int | None) -> dict:
    result = run_wrk("conveyor", url, bodies, concurrency, seconds, server_group=group)
    return {
        "requests_per_second": round(result.requests_per_second, 1),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "errors": result.errors,
    }


def measure(args: argparse.Namespace, home: Path, installation: Installation) -> dict:
    port = free_port()
    command = [str(Path(sys.executable).parent / "conveyor"), "--home", str(home), "serve"]
    command += ["--workers", "1", "--port", str(port), "--no-auth"]
    url = f"http://127.0.0.1:{port}/api/v1/endpoints/heart/predict"
    bodies = home / "bodies.txt"
    bodies.write_text(json.dumps(HEART) + "\n")
    figures: dict = {}
    with ServerProcess("conveyor serve", command, home / "serve.log") as server:
        wait_until_answering(server, url, json.dumps(HEART).encode())
        figures["baseline"] = load(url, bodies, args.concurrency, args.duration, server.group)
        pruned: dict = {}

        def prune() -> None:
            started = time.monotonic()
            before = utcnow() - timedelta(days=args.keep_days)
            pruned["rows_in_dropped_days"] = drop_days_before(installation.engine, before)
            pruned["drop_seconds"] = round(time.monotonic() - started, 1)
            pruned["rows_deleted_in_batches"] = prune_predictions(
                installation.sessions,
                before,
                batch_rows=args.batch_rows,
                pause_seconds=args.pause,
            )
            pruned["seconds"] = round(time.monotonic() - started, 1)

        pruner = threading.Thread(target=prune)
        pruner.start()
        figures["pruning"] = load(url, bodies, args.concurrency, args.duration, server.group)
        pruner.join()
        figures["prune"] = pruned
        figures["baseline_after"] = load(url, bodies, args.concurrency, args.duration, server.group)
    return figures


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--days", type=float, default=60)
    parser.add_argument("--keep-days", type=float, default=30)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-rows", type=int, default=2000)
    parser.add_argument("--pause", type=float, default=0.05)
    return parser.parse_args()


def run(args: argparse.Namespace, url: str, folder: Path) -> dict:
    home = folder / "home"
    home.mkdir()
    (home / "conveyor.toml").write_text(f'database_url = "{url}"\n')
    register_heart(ModelRegistry.for_home(home, None), folder / "work")
    installation = Installation(load_settings(home))
    try:
        report: dict = {"rows": args.rows, "days": args.days, "keep_days": args.keep_days}
        # Daily partitions for the whole span, as maintenance makes them day by day.
        ensure_days(installation.engine, utcnow(), back=int(args.days) + 1)
        report["fill_seconds"] = round(fill(installation, args.rows, args.days), 1)
        started = time.monotonic()
        made = run_maintenance(installation.sessions, ROLL_UP_ONLY)
        report["rollup_seconds"] = round(time.monotonic() - started, 1)
        report["rollup_rows"] = made.rolled_up
        report |= check_rollups(installation)
        return report | measure(args, home, installation)
    finally:
        installation.close()


def main() -> None:
    args = arguments()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        with tempfile.TemporaryDirectory(prefix="conveyor-retention-") as folder:
            url = f"{ADMIN_URL}?options=-csearch_path%3D{schema}"
            report = run(args, url, Path(folder))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    baseline = (report["baseline"]["p99_ms"] + report["baseline_after"]["p99_ms"]) / 2
    report["p99_pruning_vs_baseline"] = round(report["pruning"]["p99_ms"] / baseline, 3)
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
