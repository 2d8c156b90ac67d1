"""Throughput of the same work three ways: Conveyor's durable path, raw Ray, and Prefect 3.

The work is the ``noop`` pipeline: per item four pass-through steps in a diamond
(a -> b, c -> d), each needing one CPU.

1. Conveyor: ``run_noop_benchmark`` on a fresh temporary home (embedded SQLite), after a
   warm-up run. Its seconds are submit + run, since raw Ray's include submitting too.
2. Raw Ray: the same diamond as four plain Ray tasks per item with no bookkeeping; every
   item is submitted, then every result fetched. Same Ray instance as (1).
3. Prefect 3: one flow run per item on Prefect's local ephemeral server, in its own virtual
   environment (``benchmarks/.venv-prefect``), run as a subprocess of ``prefect_flow.py``.

Usage: ``.venv/bin/python benchmarks/engine_throughput.py [--items N] [--prefect-items N]
[--skip-prefect] [--json]`` (``make bench`` runs it with the defaults).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ray

from conveyor.engine.bench import run_noop_benchmark
from conveyor.installation import Installation
from conveyor.settings import load_settings

BENCHMARKS = Path(__file__).resolve().parent
PREFECT_VENV = BENCHMARKS / ".venv-prefect"
# Prefect 3.9 does not install here, and Prefect 3.8 with the fastapi that pip picks by
# default (0.165) crashes its embedded server (Body() got an unexpected keyword 'min_items').
PREFECT_REQUIREMENTS = ("prefect==3.8.*", "fastapi==0.154.0")
RAW_TO_CONVEYOR_TARGET = 0.60
CONVEYOR_TO_PREFECT_TARGET = 20.0


@dataclass(frozen=True)
class Measurement:
    method: str
    items: int
    seconds: float
    note: str = ""

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 2),
        }


# -- Conveyor ------------------------------------------------------------------------------


def measure_conveyor(items: int, warmup: int) -> Measurement:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as home:
        installation = Installation(load_settings(home))
        try:
            controller = installation.controller()
            if warmup:
                run_noop_benchmark(installation, warmup, controller)
            result = run_noop_benchmark(installation, items, controller)
        finally:
            installation.close()
    if result.succeeded != items:
        raise RuntimeError(f"Conveyor finished {result.succeeded} of {items} items")
    note = f"submit {result.submit_seconds:.2f}s + run {result.run_seconds:.2f}s"
    return Measurement(
        "Conveyor (durable)", items, result.submit_seconds + result.run_seconds, note
    )


# -- raw Ray -------------------------------------------------------------------------------


def _pass_through(value: Any, *_others: Any) -> Any:
    return value


def measure_raw_ray(items: int, warmup: int) -> Measurement:
    step = ray.remote(_pass_through).options(num_cpus=1, max_retries=0)
    if warmup:
        _run_raw_diamonds(step, warmup)
    started = time.perf_counter()
    _run_raw_diamonds(step, items)
    return Measurement("raw Ray tasks", items, time.perf_counter() - started)


def _run_raw_diamonds(step: Any, items: int) -> None:
    finals = []
    for n in range(items):
        first = step.remote({"n": n, "sleep_ms": 0})
        finals.append(step.remote(step.remote(first), step.remote(first)))
    results = ray.get(finals)
    assert len(results) == items


# -- Prefect -------------------------------------------------------------------------------


def prefect_python() -> tuple[Path | None, str]:
    """The Prefect venv's interpreter, creating the venv if needed; else None and why."""
    python = PREFECT_VENV / "bin" / "python"
    marker = PREFECT_VENV / ".installed"
    wanted = " ".join(PREFECT_REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python, ""
    print(f"creating {PREFECT_VENV} with {wanted} ...", file=sys.stderr, flush=True)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(PREFECT_VENV)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *PREFECT_REQUIREMENTS,
            ],
            check=True,
            timeout=900,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"could not create {PREFECT_VENV} (no network?): {_last_lines(error, 1)}"
    marker.write_text(wanted)
    return python, ""


def measure_prefect(items: int) -> tuple[Measurement | None, str]:
    python, problem = prefect_python()
    if python is None:
        return None, problem
    command = [str(python), str(BENCHMARKS / "prefect_flow.py"), "--items", str(items)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=max(600, 30 * items)
        )
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"the Prefect run failed: {_last_lines(error, 5)}"
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    note = f"prefect {figures['prefect_version']}, one flow run per item"
    return Measurement("Prefect 3", figures["items"], figures["seconds"], note), ""


def _last_lines(error: Exception, count: int) -> str:
    text = getattr(error, "stderr", None) or str(error) or type(error).__name__
    return " | ".join(text.strip().splitlines()[-count:])


# -- report --------------------------------------------------------------------------------


def ratios(measurements: dict[str, Measurement]) -> dict[str, dict[str, float]]:
    conveyor = measurements["conveyor"].items_per_second
    found: dict[str, dict[str, float]] = {}
    if "raw_ray" in measurements:
        value = conveyor / measurements["raw_ray"].items_per_second
        found["conveyor_over_raw_ray"] = {"value": value, "target": RAW_TO_CONVEYOR_TARGET}
    if "prefect" in measurements:
        value = conveyor / measurements["prefect"].items_per_second
        found["conveyor_over_prefect"] = {"value": value, "target": CONVEYOR_TO_PREFECT_TARGET}
    return found


def print_table(
    measurements: dict[str, Measurement], found: dict[str, dict[str, float]], notes: list[str]
) -> None:
    print(f"\nnoop diamond (4 steps per item, 1 CPU each) on {os.cpu_count()} CPUs")
    print(f"{'method':<20} {'items':>7} {'seconds':>9} {'items/s':>9}  note")
    for measurement in measurements.values():
        print(
            f"{measurement.method:<20} {measurement.items:>7} {measurement.seconds:>9.2f} "
            f"{measurement.items_per_second:>9.1f}  {measurement.note}"
        )
    print()
    for name, ratio in found.items():
        verdict = "meets" if ratio["value"] >= ratio["target"] else "BELOW"
        print(
            f"{name.replace('_', ' ')}: {ratio['value']:.2f}x "
            f"({verdict} target >= {ratio['target']:g}x)"
        )
    for note in notes:
        print(f"note: {note}")


def print_json(
    measurements: dict[str, Measurement], found: dict[str, dict[str, float]], notes: list[str]
) -> None:
    print(
        json.dumps(
            {
                "cpus": os.cpu_count(),
                "methods": {
                    key: measurement.as_dict() for key, measurement in measurements.items()
                },
                "ratios": {
                    key: {"value": round(ratio["value"], 3), "target": ratio["target"]}
                    for key, ratio in found.items()
                },
                "notes": notes,
            }
        )
    )


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--items", type=int, default=2000, help="items for Conveyor and raw Ray (default 2000)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="items run first and not counted, for Conveyor and raw Ray",
    )
    parser.add_argument(
        "--prefect-items",
        type=int,
        default=60,
        help="flow runs for Prefect (default 60; ~1 item/s)",
    )
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    ray.init(
        address="local",
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    try:
        measurements = {
            "conveyor": measure_conveyor(arguments.items, arguments.warmup),
            "raw_ray": measure_raw_ray(arguments.items, arguments.warmup),
        }
    finally:
        ray.shutdown()  # only the instance started above; leaves Prefect the CPUs
    notes = []
    if arguments.skip_prefect:
        notes.append("Prefect skipped (--skip-prefect)")
    else:
        prefect, problem = measure_prefect(arguments.prefect_items)
        if prefect is not None:
            measurements["prefect"] = prefect
        else:
            notes.append(f"Prefect not measured: {problem}")
    found = ratios(measurements)
    if arguments.json:
        print_json(measurements, found, notes)
    else:
        print_table(measurements, found, notes)


if __name__ == "__main__":
    main()
