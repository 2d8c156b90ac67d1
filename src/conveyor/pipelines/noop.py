"""``noop``: four steps in a diamond (a -> b, c -> d) that pass their input through.

A record field ``sleep_ms`` makes each step sleep that long; ``fail`` = "permanent" or
"transient" makes step ``b`` fail that way. Used by the benchmark and fault tests.
"""

from __future__ import annotations

import time
from typing import Any

from conveyor.errors import PermanentStepError
from conveyor.pipeline import Pipeline, StepContext, step


def _pause(record: Any) -> None:
    if isinstance(record, dict) and record.get("sleep_ms"):
        time.sleep(float(record["sleep_ms"]) / 1000)


@step(retries=2, backoff_seconds=0.2)
def a(context: StepContext) -> Any:
    _pause(context.record)
    return context.record


@step(retries=2, backoff_seconds=0.2)
def b(context: StepContext, a: Any) -> Any:
    _pause(a)
    failure = a.get("fail") if isinstance(a, dict) else None
    if failure == "permanent":
        raise PermanentStepError("record asked for a permanent failure ('fail': 'permanent')")
    if failure == "transient" and context.attempt < 2:
        raise RuntimeError("record asked for a transient failure on the first attempt")
    return a


@step(retries=2, backoff_seconds=0.2)
def c(context: StepContext, a: Any) -> Any:
    _pause(a)
    return a


@step(retries=2, backoff_seconds=0.2)
def d(context: StepContext, b: Any, c: Any) -> Any:
    _pause(b)
    return b


noop = Pipeline(
    "noop",
    version="1",
    dag={a: [], b: [a], c: [a], d: [b, c]},
    description="Four pass-through steps in a diamond; for benchmarks and fault tests.",
    accepts=("record",),
)
