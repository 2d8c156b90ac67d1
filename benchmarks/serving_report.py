"""The report of ``serving_load.py``: what each server did, the table, ratios and targets."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

from serving_processes import LoadResult

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


def format_row(result: LoadResult) -> str:
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
    arguments: argparse.Namespace, model: str, records: int, measured: dict[str, Measured]
) -> dict[str, Any]:
    results = [result for server in measured.values() for result in server.results]
    found_ratios = ratios(results)
    report: dict[str, Any] = {
        "model": model,
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
            f"{records} held-out records of {model}, one per request",
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
        print(format_row(LoadResult(**{k: v for k, v in result.items() if k in LOAD_FIELDS})))
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
