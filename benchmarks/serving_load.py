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
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
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
TARGET_RPS_AT_16 = 3000.0
TARGET_P99_MS_AT_16 = 20.0
TARGET_OVER_MLFLOW = 5.0
LOAD_FIELDS = {field.name for field in fields(LoadResult)}


@dataclass
class Measured:
    """What one server did: the measured runs, its first answer, every request answered."""

    results: list[LoadResult]
    answered: str
    requests: int = 0  # 200s while starting, plus what wrk counted in warm-ups and runs
    in_flight: int = 0  # at most this many more answered: still in flight when a wrk run ended
    logged_during_run: int | None = None
    logged_after_stop: int | None = None
    load_averages: tuple[float, float] = (0.0, 0.0)  # 1-minute load average, before and after
    startup_seconds: float = 0.0  # until it answered quickly and its processes were idle


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
    print(_row(result), file=sys.stderr, flush=True)
    return result


# -- report --------------------------------------------------------------------------------


def _row(result: LoadResult) -> str:
    return (
        f"{result.server:<15} {result.concurrency:>5} {result.requests_per_second:>10.1f} "
        f"{result.p50_ms:>8.2f} {result.p99_ms:>8.2f} {result.errors:>7} "
        f"{_figure(result.server_cpu_us_per_request):>12} {_figure(result.capacity_per_second):>10}"
        + (
            "  (a server process died or was replaced during the run)"
            if result.processes_changed
            else ""
        )
    )


def _figure(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}"


def _whole(value: float) -> int | None:
    return None if math.isnan(value) else round(value)


def build_report(
    arguments: argparse.Namespace, version: int, records: int, measured: dict[str, Measured]
) -> dict[str, Any]:
    results = [result for server in measured.values() for result in server.results]
    found_ratios = ratios(results)
    report: dict[str, Any] = {
        "model": f"{MODEL} v{version}",
        "workers": arguments.workers,
        "duration": arguments.duration,
        "warmup": arguments.warmup,
        "answers": {key: server.answered for key, server in measured.items()},
        "results": [
            asdict(r)
            | {
                "requests_per_second": round(r.requests_per_second, 1),
                "server_cpu_us_per_request": _whole(r.server_cpu_us_per_request),
                "capacity_per_second": _whole(r.capacity_per_second),
            }
            for r in results
        ],
        "conveyor_over_mlflow": {c: round(v, 2) for c, v in found_ratios.items()},
        "targets": target_lines(results, found_ratios),
        "notes": [
            f"{records} held-out records of {MODEL} v{version}, one per request",
            "server µs/req: CPU time of all the server's processes per request during the run; "
            "capacity/s: requests/s if the server and wrk had every CPU to themselves "
            "(CPUs / their CPU time per request), a figure that other load does not lower much",
        ],
    }
    for server in measured.values():
        name = server.results[0].server if server.results else "?"
        before, after = server.load_averages
        report["notes"].append(
            f"{name}: ready (answering, every worker idle) {server.startup_seconds:.0f} s after "
            f"its start; 1-minute load average {before:.1f} before its runs, {after:.1f} after "
            f"({os.cpu_count()} CPUs: above that, other processes took CPU from the runs)"
        )
    conveyor = measured.get("conveyor")
    if conveyor is not None:
        rows = conveyor.logged_after_stop or 0
        report["prediction_log"] = {
            "requests_answered": conveyor.requests,
            "requests_in_flight_at_most": conveyor.in_flight,
            "rows_during_run": conveyor.logged_during_run,
            "rows_after_stop": rows,
            "complete": conveyor.requests <= rows <= conveyor.requests + conveyor.in_flight,
        }
    return report


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\nheart endpoint, {report['workers']} workers per server, wrk {report['duration']:g} s "
        f"per concurrency after {report['warmup']:g} s warm-up, {os.cpu_count()} CPUs"
    )
    print(
        f"{'server':<15} {'conc.':>5} {'requests/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'server µs/req':>12} {'capacity/s':>10}"
    )
    for result in report["results"]:
        print(_row(LoadResult(**{k: v for k, v in result.items() if k in LOAD_FIELDS})))
    print()
    log = report.get("prediction_log")
    if log is not None:
        verdict = "every answer logged" if log["complete"] else "ROWS MISSING OR EXTRA"
        print(
            f"prediction log: {log['rows_during_run']} rows written while Conveyor ran, "
            f"{log['rows_after_stop']} after it stopped, for {log['requests_answered']} answers "
            f"counted (+ at most {log['requests_in_flight_at_most']} still in flight when a wrk "
            f"run ended): {verdict}"
        )
    for concurrency, ratio in report["conveyor_over_mlflow"].items():
        print(f"Conveyor / MLflow throughput at concurrency {concurrency}: {ratio:.1f}x")
    print()
    for line in report["targets"]:
        print(line)
    for note in report["notes"]:
        print(f"note: {note}")


def ratios(results: list[LoadResult]) -> dict[int, float]:
    by_server: dict[str, dict[int, float]] = {}
    for result in results:
        by_server.setdefault(result.server.split()[0], {})[result.concurrency] = (
            result.requests_per_second
        )
    conveyor, mlflow = by_server.get("Conveyor", {}), by_server.get("MLflow", {})
    return {c: conveyor[c] / mlflow[c] for c in conveyor if mlflow.get(c)}


def target_lines(results: list[LoadResult], found: dict[int, float]) -> list[str]:
    at_16 = next(
        (r for r in results if r.server.startswith("Conveyor") and r.concurrency == 16), None
    )
    lines = []
    if at_16 is None:
        lines.append(
            f"target: >= {TARGET_RPS_AT_16:g} requests/s with p99 < {TARGET_P99_MS_AT_16:g} ms "
            "at concurrency 16: not measured (Conveyor at 16 not run)"
        )
    else:
        met = (
            at_16.requests_per_second >= TARGET_RPS_AT_16
            and at_16.p99_ms < TARGET_P99_MS_AT_16
            and at_16.errors == 0
        )
        lines.append(
            f"target: >= {TARGET_RPS_AT_16:g} requests/s with p99 < {TARGET_P99_MS_AT_16:g} ms "
            f"at concurrency 16: {at_16.requests_per_second:.0f}/s, p99 {at_16.p99_ms:.1f} ms, "
            f"{at_16.errors} errors -> {'MET' if met else 'NOT MET'}"
        )
    if found:
        worst = min(found.values())
        verdict = "MET" if worst >= TARGET_OVER_MLFLOW else "NOT MET"
        lines.append(
            f"target: >= {TARGET_OVER_MLFLOW:g}x MLflow's throughput at every concurrency: "
            f"lowest {worst:.1f}x -> {verdict}"
        )
    else:
        lines.append(f"target: >= {TARGET_OVER_MLFLOW:g}x MLflow's throughput: not measured")
    return lines


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
        report = build_report(arguments, version, len(records), measured)
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
