"""A step run as a worker runs it (in this process, no Ray): every ending is a StepOutcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.engine.contract import StepTask, WorkerEnvironment
from conveyor.engine.runner import run_step
from conveyor.errors import ConveyorError, StepTimeoutError


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> WorkerEnvironment:
    storage = tmp_path_factory.mktemp("storage")
    return WorkerEnvironment(storage_url=str(storage), pipeline_modules=("support.pipelines",))


def _task(pipeline: str, step: str, record: Any = None, **inputs: Any) -> StepTask:
    return StepTask(
        item_id="0" * 32,
        pipeline=pipeline,
        step=step,
        attempt=1,
        work_dir="work/runner",
        record=record,
        inputs=inputs,
    )


def test_a_step_gets_its_inputs_and_reports_output_logs_worker_and_times(
    environment: WorkerEnvironment,
) -> None:
    outcome = run_step(environment, _task("chain", "second", {"n": 1}, first=41))
    assert outcome.succeeded and outcome.output == 42 and outcome.error is None
    assert outcome.worker and outcome.started_at and outcome.finished_at
    assert outcome.started_at <= outcome.finished_at
    runs = Path(environment.storage_url, "work/runner/runs-second.txt")
    assert runs.read_text() == "1\n"  # the task's attempt reached the step's context


def test_a_permanent_error_is_reported_as_permanent(environment: WorkerEnvironment) -> None:
    outcome = run_step(environment, _task("noop", "b", a={"fail": "permanent"}))
    assert not outcome.succeeded and outcome.permanent
    assert outcome.error == "record asked for a permanent failure ('fail': 'permanent')"


def test_an_unknown_pipeline_is_a_transient_failure_not_a_crash(
    environment: WorkerEnvironment,
) -> None:
    outcome = run_step(environment, _task("not_installed", "a"))
    assert not outcome.succeeded and not outcome.permanent
    assert "not_installed" in (outcome.error or "")


def test_a_step_that_raises_fails_with_the_error_and_its_traceback_in_the_logs(
    environment: WorkerEnvironment,
) -> None:
    outcome = run_step(environment, _task("chain", "first", {"n": "not a number"}))
    assert not outcome.succeeded and not outcome.permanent
    assert outcome.error is not None and outcome.error.startswith("ValueError:")
    assert "Traceback" in outcome.logs


def test_a_timeout_is_a_conveyor_error_and_a_transient_failure(
    environment: WorkerEnvironment,
) -> None:
    assert issubclass(StepTimeoutError, ConveyorError)
    outcome = run_step(environment, _task("timeouts", "slow", {"seconds": 3}))
    assert not outcome.succeeded and not outcome.permanent
    assert outcome.error == "step exceeded its timeout of 1s"
