"""``noop``: four steps in a diamond (a -> b, c -> d) that pass their input through.

A record field ``sleep_ms`` (0 to 10000) makes each step sleep that long; ``fail`` =
"permanent" or "transient" makes step ``b`` fail that way. Used by the benchmark and fault
tests. Anyone who may submit records can run it, so the sleep is capped and every step has a
timeout.
"""

from __future__ import annotations

import time
from typing import Any

from conveyor.errors import PermanentStepError
from conveyor.pipeline import Pipeline, StepContext, step

MAX_SLEEP_MS = 10_000
STEP_TIMEOUT_SECONDS = 30.0


def _pause(record: Any) -> None:
    if isinstance(record, dict) and record.get("sleep_ms"):
        time.sleep(sleep_seconds(record["sleep_ms"]))


def sleep_seconds(sleep_ms: Any) -> float:
    """``sleep_ms`` in seconds, refused (permanently: retrying cannot help) unless it is a
    number of milliseconds from 0 to :data:`MAX_SLEEP_MS`."""
    number = isinstance(sleep_ms, int | float) and not isinstance(sleep_ms, bool)
    if not number or not 0 <= sleep_ms <= MAX_SLEEP_MS:
        raise PermanentStepError(
            f"sleep_ms must be a number of milliseconds from 0 to {MAX_SLEEP_MS}; got {sleep_ms!r}."
        )
    return sleep_ms / 1000


@step(retries=2, backoff_seconds=0.2, timeout_seconds=STEP_TIMEOUT_SECONDS)
def a(context: StepContext) -> Any:
    _pause(context.record)
    return context.record


@step(retries=2, backoff_seconds=0.2, timeout_seconds=STEP_TIMEOUT_SECONDS)
def b(context: StepContext, a: Any) -> Any:
    _pause(a)
    failure = a.get("fail") if isinstance(a, dict) else None
    if failure == "permanent":
        raise PermanentStepError("record asked for a permanent failure ('fail': 'permanent')")
    if failure == "transient" and context.attempt < 2:
        raise RuntimeError("record asked for a transient failure on the first attempt")
    return a


@step(retries=2, backoff_seconds=0.2, timeout_seconds=STEP_TIMEOUT_SECONDS)
def c(context: StepContext, a: Any) -> Any:
    _pause(a)
    return a


@step(retries=2, backoff_seconds=0.2, timeout_seconds=STEP_TIMEOUT_SECONDS)
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
