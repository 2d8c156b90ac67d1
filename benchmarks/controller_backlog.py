"""The controller's items/s with a large backlog against an empty queue (issue 18).

Per database, on a fresh home (and a fresh PostgreSQL database), one controller, the
``noop`` pipeline (four pass-through steps per item on the local Ray):

1. **empty queue**: ``--window`` items submitted at once; the rate is measured from the
   ``--warmup``-th item done to the last (Ray's start and the first claims are not timed).
2. **backlog**: ``--backlog`` more items submitted through the streamed record path
   (``submit --records``'s, batches of 5,000, timed and printed too), then the same window:
   items/s while the controller works through the oldest ones with the rest still queued.

The ratio backlog / empty is the figure: 1.0 means the backlog costs nothing per item.

Usage: ``.venv/bin/python benchmarks/controller_backlog.py [--backlog 1000000]
[--window 2000] [--databases sqlite,postgresql]``. PostgreSQL: postgres@127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from conveyor.engine.controller import Controller
from conveyor.ingest.records import BATCH_RECORDS, RecordBatch
from conveyor.installation import Installation
from conveyor.settings import load_settings

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def items_per_second(controller: Controller, window: int, warmup: int) -> float:
    """Steps the controller until ``window`` more items succeeded; the rate after ``warmup``."""
    start = controller.stats.succeeded
    started = None
    while (done := controller.stats.succeeded - start) < window:
        controller.step_once(force_claim=True)
        if started is None and done >= warmup:
            started, counted_from = time.perf_counter(), done
    assert started is not None
    return (controller.stats.succeeded - start - counted_from) / (time.perf_counter() - started)


def record_batches(count: int, run: str) -> Iterator[RecordBatch]:
    for first in range(0, count, BATCH_RECORDS):
        size = min(BATCH_RECORDS, count - first)
        records = [{"n": n, "run": run} for n in range(first, first + size)]
        yield RecordBatch(records, first + 1, 0)


def database_url(database: str, home: Path) -> tuple[str, str | None]:
    if database == "sqlite":
        return f"sqlite:///{home / 'conveyor.db'}", None
    name = f"bench_backlog_{uuid.uuid4().hex[:8]}"
    psql("CREATE DATABASE " + name)
    return f"{POSTGRES}/{name}", name


def psql(command: str) -> None:
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", command], check=True)


def measure(database: str, backlog: int, window: int, warmup: int) -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-backlog-") as folder:
        url, created = database_url(database, Path(folder))
        installation = Installation(load_settings(folder, database_url=url))
        try:
            run(installation, database, backlog, window, warmup)
        finally:
            installation.close()
            if created is not None:
                psql(f"DROP DATABASE {created}")


def run(installation: Installation, database: str, backlog: int, window: int, warm: int) -> None:
    controller = installation.controller()
    try:
        _measure_both(installation, controller, database, backlog, window, warm)
    finally:
        controller.shutdown()


def _measure_both(
    installation: Installation,
    controller: Controller,
    database: str,
    backlog: int,
    window: int,
    warm: int,
) -> None:
    submitter, tag = installation.submitter, uuid.uuid4().hex
    submitter.submit_record_batches("noop", record_batches(window, "empty-" + tag))
    empty = items_per_second(controller, window, warm)
    print(f"{database:10} empty queue: {empty:7.1f} items/s ({_load()})", flush=True)
    started = time.perf_counter()
    summary = submitter.submit_record_batches("noop", record_batches(backlog, "backlog-" + tag))
    seconds = time.perf_counter() - started
    print(
        f"{database:10} backlog of {summary.accepted:,} submitted in {seconds:.1f} s "
        f"({summary.accepted / seconds:,.0f} records/s, {_load()})",
        flush=True,
    )
    queued = items_per_second(controller, window, warm)
    print(
        f"{database:10} {backlog:,} backlog: {queued:7.1f} items/s ({_load()}); "
        f"backlog / empty = {queued / empty:.2f}",
        flush=True,
    )


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=2_000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--databases", default="sqlite,postgresql")
    arguments = parser.parse_args()
    for database in arguments.databases.split(","):
        measure(database, arguments.backlog, arguments.window, arguments.warmup)


if __name__ == "__main__":
    main()
