"""Real-time factor (processing seconds / audio seconds) of the ``calls`` pipeline on a
ten-minute synthetic call, per step and in total, then through the engine with 1 and 2
concurrent calls.

1. In process: every step function is called in DAG order on one call (models are loaded
   first, as a Ray worker would have them after its first item), and timed.
2. Engine: a fresh home (SQLite) and a local Ray instance with ``--cpus`` CPUs; N copies of
   the call are submitted at once and the wall time until all succeed is divided by the
   audio of one call (so RTF for 2 concurrent calls is the time to finish both / 600 s).

Usage: ``.venv/bin/python benchmarks/calls_rtf.py [--minutes 10] [--cpus 2] [--skip-engine]``
(needs espeak-ng and sox to make the call). Target: total RTF <= 0.15 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conveyor.pipeline.context import StepContext  # noqa: E402
from conveyor.pipelines.calls import calls  # noqa: E402
from support.calls_audio import ANGRY, HAPPY, make_call  # noqa: E402

TARGET_RTF = 0.15


def synthetic_call(folder: Path, minutes: float) -> tuple[Path, float]:
    once = make_call(HAPPY + ANGRY, folder, "once")
    repeat = max(1, round(minutes * 60 / once.duration))
    call = make_call(HAPPY + ANGRY, folder, f"{minutes:g} minute call", repeat=repeat)
    return call.path, call.duration


def warm_up(folder: Path) -> None:
    """Load every model once (the first item of a Ray worker pays this, later ones don't)."""
    short = folder / "warm-up.wav"
    make_call(HAPPY[:2], folder, "warm-up")
    run_steps(short, folder / "warm")


def run_steps(path: Path, root: Path) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """Wall seconds and CPU seconds (all threads of this process) per step, and the result."""
    work = "work/bench"
    (root / work).mkdir(parents=True, exist_ok=True)
    shutil.copy(path, root / work / path.name)
    outputs: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name in calls.order:
        context = StepContext("bench", "calls", calls.version, name, 1, str(root), work, path.name)
        arguments = {d: outputs[d] for d in calls.dependencies[name]}
        started, cpu_started = time.perf_counter(), time.process_time()
        outputs[name] = calls.steps[name].function(context, **arguments)
        seconds[name] = time.perf_counter() - started
        cpu[name] = time.process_time() - cpu_started
    return seconds, cpu, outputs["assess"]


def run_engine(path: Path, duration: float, concurrent: int, cpus: int) -> float:
    from conveyor.installation import Installation
    from conveyor.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="conveyor-calls-bench-") as home:
        installation = Installation(load_settings(home, ray_num_cpus=cpus))
        controller = installation.controller()
        warm = path.parent / "warm-up.wav"
        installation.submitter.submit_file("calls", warm)
        controller.run_until_idle(timeout=600)  # loads the models in the workers
        copies = []
        for index in range(concurrent):
            copy = path.parent / f"copy {index} {concurrent}.wav"
            data = bytearray(path.read_bytes())
            data[-2:] = index.to_bytes(2, "little")  # distinct content: not a duplicate
            copy.write_bytes(bytes(data))
            copies.append(copy)
        started = time.perf_counter()
        for copy in copies:
            installation.submitter.submit_file("calls", copy)
        controller.run_until_idle(timeout=3600)
        elapsed = time.perf_counter() - started
        _check_all_succeeded(installation)
        installation.close()
    return elapsed / duration


def _check_all_succeeded(installation) -> None:  # type: ignore[no-untyped-def]
    from conveyor.store.queries import counts_by_status

    with installation.sessions() as session:
        counts = counts_by_status(session).get("calls", {})
    if set(counts) != {"succeeded"}:
        raise SystemExit(f"not every call succeeded: {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--skip-engine", action="store_true")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="calls-rtf-") as folder:
        base = Path(folder)
        path, duration = synthetic_call(base, arguments.minutes)
        warm_up(base)
        load_before = os.getloadavg()[0]
        seconds, cpu, result = run_steps(path, base / "steps")
        figures: dict[str, Any] = {
            "audio_seconds": round(duration, 1),
            "speakers": len(result["speakers"]),
            "load_average_before": round(load_before, 1),
            "load_average_after": round(os.getloadavg()[0], 1),
            "steps_rtf": {name: round(s / duration, 4) for name, s in seconds.items()},
            "steps_cpu_seconds": {name: round(s, 1) for name, s in cpu.items()},
            "in_process_total_rtf": round(sum(seconds.values()) / duration, 4),
            "cpu_seconds_per_audio_second": round(sum(cpu.values()) / duration, 4),
        }
        if not arguments.skip_engine:
            for concurrent in (1, 2):
                rtf = run_engine(path, duration, concurrent, arguments.cpus)
                figures[f"engine_rtf_{concurrent}_concurrent"] = round(rtf, 4)
    _print(figures, arguments.json)


def _print(figures: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures))
        return
    print(f"calls: {figures['audio_seconds']} s synthetic call, {figures['speakers']} speakers")
    print(
        f"load average {figures['load_average_before']} before, "
        f"{figures['load_average_after']} after (other work on the machine slows every figure)"
    )
    print(f"{'step':<28}{'seconds':>10}{'RTF':>10}{'CPU s':>10}")
    for name, rtf in figures["steps_rtf"].items():
        cpu = figures["steps_cpu_seconds"][name]
        print(f"{name:<28}{rtf * figures['audio_seconds']:>10.1f}{rtf:>10.4f}{cpu:>10.1f}")
    total = figures["in_process_total_rtf"]
    cpu_total = sum(figures["steps_cpu_seconds"].values())
    print(
        f"{'total (in process)':<28}{total * figures['audio_seconds']:>10.1f}{total:>10.4f}"
        f"{cpu_total:>10.1f}"
    )
    print(f"CPU seconds per audio second: {figures['cpu_seconds_per_audio_second']}")
    for concurrent in (1, 2):
        key = f"engine_rtf_{concurrent}_concurrent"
        if key in figures:
            label = f"engine, {concurrent} concurrent"
            print(
                f"{label:<28}{figures[key] * figures['audio_seconds']:>10.1f}{figures[key]:>10.4f}"
            )
    verdict = "meets" if total <= TARGET_RTF else "misses"
    print(f"target total RTF <= {TARGET_RTF}: the in-process total {verdict} it")


if __name__ == "__main__":
    main()
