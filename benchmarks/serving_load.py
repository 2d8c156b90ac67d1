"""Load benchmark of the heart endpoint: Conveyor serving against ``mlflow models serve``.

In one run on this machine:

1. A Conveyor home with a registered heart model: a fresh temporary one trained with
   ``conveyor train heart --wait``, or the home given by ``--home`` (trained there only if it
   has no heart champion yet, so a kept home makes reruns quick).
2. ``mlflow models serve`` of that exact version (``models:/heart/N``, ``--env-manager local``,
   in the separate venv ``benchmarks/.venv-mlflow`` that has the full ``mlflow``), then
   ``conveyor serve`` of the same home, each with the same number of workers, one after the
   other so that each has the machine to itself.
3. For each, a separate ``wrk`` process on loopback POSTs held-out heart records (one per
   request, in turn) at each concurrency for a fixed time after a warm-up, with ``--latency``;
   every answer outside 2xx and every socket error or timeout counts as an error.
4. A table (server, concurrency, requests/s, p50, p99, errors), Conveyor/MLflow throughput per
   concurrency, the targets, and how many rows the prediction log received during the run.

Usage: ``.venv/bin/python benchmarks/serving_load.py [--home PATH] [--workers 2]
[--duration 10] [--warmup 3] [--concurrency 1,16,64] [--skip-mlflow] [--json]``
(``make bench-serving`` runs it with the defaults).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving_processes import (
    BenchmarkError,
    LoadResult,
    ServerProcess,
    mlflow_bin,
    run_wrk,
    wait_until_answering,
    wait_until_idle,
)
from serving_report import Measured, build_report, format_row, print_report

from conveyor.models.registry import ModelRegistry
from conveyor.settings import load_settings

REPOSITORY = Path(__file__).resolve().parent.parent
CONVEYOR = Path(sys.executable).parent / "conveyor"
MODEL = "heart"
FEATURES = (
    *("age", "sex", "cp", "trestbps", "chol", "fbs", "restecg"),
    *("thalach", "exang", "oldpeak", "slope", "ca", "thal"),
)
RECORDS = 20
LOG_SETTLE_SECONDS = 1.0  # the prediction log writes every ~200 ms


@dataclass(frozen=True)
class Target:
    """A server to measure: how to start it, where to POST, what one body looks like."""

    name: str
    start: Callable[[], ServerProcess]
    url: str
    body: Callable[[dict[str, float]], dict[str, Any]]
    check: Callable[[Any], str]  # the first answer -> what it said, or raises


# -- the home and the model ----------------------------------------------------------------


@contextmanager
def conveyor_home(home: Path | None, dataset: str | None) -> Iterator[Path]:
    """The given home, else a temporary one removed afterwards; with a heart champion."""
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        ensure_trained(home, dataset)
        yield home.resolve()
        return
    folder = Path(tempfile.mkdtemp(prefix="conveyor-serving-bench-"))
    try:
        ensure_trained(folder, dataset)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def registry_of(home: Path) -> ModelRegistry:
    return ModelRegistry.for_home(home, load_settings(home).mlflow_tracking_uri)


def champion_version(home: Path) -> int | None:
    try:
        return registry_of(home).aliases(MODEL).get("champion")
    except Exception:  # no registered model yet (a fresh home)
        return None


def ensure_trained(home: Path, dataset: str | None) -> None:
    if champion_version(home) is not None:
        return
    print(f"training the {MODEL} model in {home} ...", file=sys.stderr, flush=True)
    command = [str(CONVEYOR), "--home", str(home), "train", MODEL, "--wait"]
    if dataset:
        command += ["--param", f"dataset={dataset}"]
    with ServerProcess("conveyor train", command, home / "bench-train.log", cwd=REPOSITORY) as run:
        assert run.process is not None
        code = run.process.wait(timeout=900)
        if code != 0:
            raise BenchmarkError(f"training failed ({code}):\n{run.log_tail()}")
    if champion_version(home) is None:
        raise BenchmarkError(f"training registered no {MODEL} champion in {home}")


def heldout_records(home: Path, version: int, count: int) -> list[dict[str, float]]:
    """Complete held-out rows of the version's training run: real records it never saw."""
    registry = registry_of(home)
    run_id = registry.version(MODEL, version).run_id
    if run_id is None:
        raise BenchmarkError(f"{MODEL} v{version} has no training run to take records from")
    path = registry.download(run_id, "data/heldout.csv", home / "bench-records")
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if all(row[f] for f in FEATURES)]
    if not rows:
        raise BenchmarkError(f"no complete held-out rows in {path}")
    return [{feature: float(row[feature]) for feature in FEATURES} for row in rows[:count]]


def write_bodies(target: Target, records: list[dict[str, float]], folder: Path) -> Path:
    path = folder / f"bodies-{target.name.split()[0].lower()}.jsonl"
    path.write_text("".join(json.dumps(target.body(record)) + "\n" for record in records))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- MLflow --------------------------------------------------------------------------------


def mlflow_target(home: Path, version: int, workers: int, logs: Path) -> Target:
    port = free_port()
    tracking_uri = registry_of(home).tracking_uri

    def start() -> ServerProcess:
        bin_folder = mlflow_bin()
        command = [str(bin_folder / "mlflow"), "models", "serve"]
        command += ["--model-uri", f"models:/{MODEL}/{version}", "--env-manager", "local"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        environment = os.environ | {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_REGISTRY_URI": tracking_uri,
            # mlflow runs `uvicorn` by name: the venv's bin must come first on PATH
            "PATH": f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        return ServerProcess("mlflow models serve", command, logs / "mlflow.log", env=environment)

    def check(answer: Any) -> str:
        if not (isinstance(answer, dict) and len(answer.get("predictions", [])) == 1):
            raise BenchmarkError(f"MLflow answered without one prediction: {answer}")
        return f"{MODEL} v{version} (predictions {answer['predictions']})"

    return Target(
        name=f"MLflow {_mlflow_version()}",
        start=start,
        url=f"http://127.0.0.1:{port}/invocations",
        body=lambda record: {"dataframe_records": [record]},
        check=check,
    )


# -- Conveyor ------------------------------------------------------------------------------


def conveyor_target(home: Path, version: int, workers: int, logs: Path) -> Target:
    port = free_port()
    command = [str(CONVEYOR), "--home", str(home), "serve", "--workers", str(workers)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-auth"]

    def check(answer: Any) -> str:
        predictions = answer.get("predictions", []) if isinstance(answer, dict) else []
        if len(predictions) != 1 or answer.get("version") != version:
            raise BenchmarkError(
                f"Conveyor did not answer with one prediction of v{version}: {answer}"
            )
        return f"{answer['model']} v{answer['version']} ({predictions[0]})"

    return Target(
        name="Conveyor",
        start=lambda: ServerProcess("conveyor serve", command, logs / "conveyor.log"),
        url=f"http://127.0.0.1:{port}/api/v1/endpoints/{MODEL}/predict",
        body=lambda record: record,
        check=check,
    )


def logged_predictions(home: Path) -> int:
    """Rows of the heart endpoint in the prediction log (the ``predictions`` table)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(load_settings(home).resolved_database_url)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM predictions WHERE endpoint = :endpoint")
            return int(connection.execute(query, {"endpoint": MODEL}).scalar_one())
    finally:
        engine.dispose()


def _mlflow_version() -> str:
    from importlib.metadata import version

    return version("mlflow-skinny")


# -- measuring -----------------------------------------------------------------------------


def measure(
    target: Target,
    bodies: Path,
    arguments: argparse.Namespace,
    count_logged: Callable[[], int] | None = None,
) -> Measured:
    """Start the server, check one answer, then warm-up + measured wrk runs; stop it.

    ``count_logged`` (Conveyor) counts prediction-log rows: the rows added while the server
    runs (after a short wait for the batched writer) and after it stopped (its last flush)."""
    print(f"starting {target.name} ...", file=sys.stderr, flush=True)
    before = count_logged() if count_logged else 0
    started = time.monotonic()
    with target.start() as server:
        first_body = bodies.read_text().splitlines()[0].encode()
        first_answer, answered_while_starting = wait_until_answering(server, target.url, first_body)
        answered = target.check(first_answer)
        wait_until_idle(server)
        print(f"{target.name} answers: {answered}", file=sys.stderr, flush=True)
        measured = Measured([], answered, requests=answered_while_starting)
        measured.startup_seconds = time.monotonic() - started
        load_before = os.getloadavg()[0]
        for concurrency in arguments.concurrency:
            measured.results.append(
                _run_level(target, bodies, arguments, concurrency, measured, server.group)
            )
            server.check_alive()
        measured.load_averages = (load_before, os.getloadavg()[0])
        if count_logged:
            time.sleep(LOG_SETTLE_SECONDS)
            measured.logged_during_run = count_logged() - before
    if count_logged:
        measured.logged_after_stop = count_logged() - before
    return measured


def _run_level(
    target: Target,
    bodies: Path,
    arguments: argparse.Namespace,
    concurrency: int,
    measured: Measured,
    server_group: int | None,
) -> LoadResult:
    if arguments.warmup:
        warmup = run_wrk(
            target.name, target.url, bodies, concurrency, arguments.warmup, arguments.threads
        )
        measured.requests += warmup.requests
    result = run_wrk(
        target.name,
        target.url,
        bodies,
        concurrency,
        arguments.duration,
        arguments.threads,
        server_group,
    )
    measured.requests += result.requests
    measured.in_flight += concurrency * (2 if arguments.warmup else 1)
    print(format_row(result), file=sys.stderr, flush=True)
    return result


# -- main ----------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home",
        type=Path,
        help="a Conveyor home to reuse (trained there if it has no heart champion); "
        "default: a fresh temporary home, removed afterwards",
    )
    parser.add_argument("--dataset", help="CSV to train on (default: the heart default)")
    parser.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each run")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 16, 64],
        help="open connections, comma-separated (default 1,16,64)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-conveyor", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def run(arguments: argparse.Namespace) -> None:
    with conveyor_home(arguments.home, arguments.dataset) as home:
        version = champion_version(home)
        assert version is not None
        logs = home / "bench-logs"
        logs.mkdir(exist_ok=True)
        records = heldout_records(home, version, RECORDS)
        measured: dict[str, Measured] = {}
        if not arguments.skip_mlflow:
            target = mlflow_target(home, version, arguments.workers, logs)
            measured["mlflow"] = measure(target, write_bodies(target, records, logs), arguments)
        if not arguments.skip_conveyor:
            target = conveyor_target(home, version, arguments.workers, logs)
            bodies = write_bodies(target, records, logs)
            measured["conveyor"] = measure(
                target, bodies, arguments, lambda: logged_predictions(home)
            )
        report = build_report(arguments, f"{MODEL} v{version}", len(records), measured)
        if arguments.json:
            print(json.dumps(report))
        else:
            print_report(report)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through every finally: servers are stopped


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)  # SIGINT too: a background job starts with it ignored
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    try:
        run(arguments)
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
