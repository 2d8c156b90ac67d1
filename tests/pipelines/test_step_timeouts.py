"""No built-in pipeline can hold a worker for ever: every step has a timeout, and ``noop``'s
user-chosen sleep is capped with a clear error."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import pytest

from conveyor.errors import PermanentStepError
from conveyor.pipeline.registry import BUILTIN_MODULES, discover
from conveyor.pipelines import noop
from conveyor.store import queries

CAP = r"sleep_ms must be a number of milliseconds from 0 to 10000"


def test_every_built_in_step_has_a_timeout() -> None:
    built_in = [p for p in discover() if _is_built_in(p.name)]
    assert {p.name for p in built_in} >= {
        "noop",
        "csv_profile",
        "heart",
        "movies",
        "calls",
        "wildlife",
    }
    missing = [
        f"{pipeline.name}.{name}"
        for pipeline in built_in
        for name, step in pipeline.steps.items()
        if not step.timeout_seconds or step.timeout_seconds <= 0
    ]
    assert not missing, f"steps without a timeout: {missing}"


def _is_built_in(name: str) -> bool:
    return any(module.rsplit(".", 1)[-1] == name for module in BUILTIN_MODULES)


@pytest.mark.parametrize("value", [10_001, 3_600_000, -1, math.nan, math.inf, "100", True, [1]])
def test_noop_refuses_sleeps_outside_the_cap(value: object) -> None:
    with pytest.raises(PermanentStepError, match=CAP):
        noop.sleep_seconds(value)


def test_noop_accepts_sleeps_inside_the_cap() -> None:
    assert noop.sleep_seconds(0) == 0
    assert noop.sleep_seconds(250) == 0.25
    assert noop.sleep_seconds(10_000.0) == 10


def test_an_hour_long_sleep_fails_the_item_at_once(installation) -> None:  # type: ignore[no-untyped-def]
    [hour] = installation.submitter.submit_records("noop", [{"n": 1, "sleep_ms": 3_600_000}])
    [short] = installation.submitter.submit_records("noop", [{"n": 2, "sleep_ms": 10}])
    started = time.monotonic()
    installation.controller().run_until_idle(timeout=120)
    assert time.monotonic() - started < 60
    with installation.sessions() as session:
        refused = queries.get_item(session, hour.item_id)
        passed = queries.get_item(session, short.item_id)
    assert refused.status == "failed"
    assert "sleep_ms must be a number of milliseconds from 0 to 10000; got 3600000" in (
        refused.error or ""
    )
    assert passed.status == "succeeded"


def test_calls_and_wildlife_step_timeouts_come_from_their_settings() -> None:
    script = (
        "import json\n"
        "from conveyor.pipelines.calls import calls\n"
        "from conveyor.pipelines.wildlife import wildlife\n"
        "print(json.dumps({p.name: sorted({s.timeout_seconds for s in p.steps.values()})"
        " for p in (calls, wildlife)}))\n"
    )
    environment = {
        **os.environ,
        "CONVEYOR_CALLS_STEP_TIMEOUT_SECONDS": "123",
        "CONVEYOR_WILDLIFE_STEP_TIMEOUT_SECONDS": "45",
    }
    run = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout) == {"calls": [123.0], "wildlife": [45.0]}
