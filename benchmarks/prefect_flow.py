"""Prefect side of ``engine_throughput.py``: one flow run per item, four tasks in a diamond.

Runs inside ``benchmarks/.venv-prefect`` (Prefect is not a Conveyor dependency), against
Prefect's local ephemeral server with a fresh ``PREFECT_HOME``, and prints one JSON line:
``{"items", "seconds", "items_per_second", "prefect_version"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=2)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prefect-bench-") as home:
        _configure(home)  # before importing prefect, which reads settings at import time
        print(json.dumps(_measure(arguments.items, arguments.warmup)), flush=True)


def _configure(home: str) -> None:
    os.environ["PREFECT_HOME"] = home
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.setdefault("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "true")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _measure(items: int, warmup: int) -> dict[str, Any]:
    import prefect

    diamond = _build_flow()
    for n in range(warmup):  # starts the ephemeral server and its database
        diamond({"n": -1 - n, "sleep_ms": 0})
    started = time.perf_counter()
    for n in range(items):
        diamond({"n": n, "sleep_ms": 0})
    seconds = time.perf_counter() - started
    return {
        "items": items,
        "seconds": round(seconds, 3),
        "items_per_second": round(items / seconds, 3) if seconds else 0.0,
        "prefect_version": prefect.__version__,
    }


def _build_flow() -> Any:
    from prefect import flow, task

    @task
    def a(record: dict[str, Any]) -> dict[str, Any]:
        return record

    @task
    def b(a: dict[str, Any]) -> dict[str, Any]:
        return a

    @task
    def c(a: dict[str, Any]) -> dict[str, Any]:
        return a

    @task
    def d(b: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
        return b

    @flow(name="noop-diamond", log_prints=False)
    def diamond(record: dict[str, Any]) -> dict[str, Any]:
        first = a.submit(record)
        return d.submit(b.submit(first), c.submit(first)).result()

    return diamond


if __name__ == "__main__":
    main()
