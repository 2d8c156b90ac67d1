"""Waiting for a condition instead of sleeping, and counting rows of the store, as the engine's
fault tests do (timeouts are generous: the machine may be loaded)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from conveyor.store.models import StepRun


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def count(installation: Any, query: Any) -> int:
    """The scalar ``query`` (a count) on the installation's store."""
    with installation.sessions() as session:
        return int(session.scalar(query) or 0)


def step_runs(installation: Any) -> list[StepRun]:
    """Every step run of the store, oldest first."""
    with installation.sessions() as session:
        return list(session.scalars(select(StepRun).order_by(StepRun.id)))


def each_step_succeeded_once(runs: list[StepRun], expected: int) -> Counter[tuple[str, str]]:
    """The (item, step) pairs of the committed successes in ``runs``; fails unless there are
    ``expected`` of them and none succeeded twice (the engine's exactly-once promise)."""
    successes = Counter((run.item_id, run.step) for run in runs if run.status == "succeeded")
    assert len(successes) == expected and set(successes.values()) == {1}, successes
    return successes
