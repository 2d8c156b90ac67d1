"""The body of every step run on a Ray worker: run the step, capture its logs, report.

Workers never touch the state store; they return a :class:`StepOutcome` that the controller
commits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import signal
import socket
import threading
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from conveyor.engine.contract import StepOutcome, StepTask, WorkerEnvironment
from conveyor.errors import PermanentStepError, StepTimeoutError
from conveyor.pipeline.context import StepContext
from conveyor.pipeline.registry import PipelineRegistry, discover

_registries: dict[tuple[str, ...], PipelineRegistry] = {}
MAX_LOG_CHARS = 200_000


def _registry(modules: tuple[str, ...]) -> PipelineRegistry:
    # Discovered once per worker process, so models loaded at import time load once.
    if modules not in _registries:
        _registries[modules] = discover(modules)
    return _registries[modules]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def run_step(environment: WorkerEnvironment, task: StepTask) -> StepOutcome:
    """Run one step of one item; never raises for errors of the step itself."""
    started_at = _now()
    with _captured_logs() as logs:
        try:
            output = _run(environment, task)
            outcome = StepOutcome(succeeded=True, output=output)
        except PermanentStepError as error:
            outcome = StepOutcome(succeeded=False, permanent=True, error=str(error))
        except StepTimeoutError as error:
            outcome = StepOutcome(succeeded=False, error=str(error))
        except Exception as error:  # a step's own failure is data, not a crash
            logging.getLogger("conveyor.step").error("%s", traceback.format_exc())
            outcome = StepOutcome(succeeded=False, error=_describe(error))
    return dataclasses.replace(
        outcome,
        logs=logs.getvalue()[-MAX_LOG_CHARS:],
        worker=f"{socket.gethostname()}:{os.getpid()}",
        node_id=_node_id(),
        started_at=started_at,
        finished_at=_now(),
    )


def _run(environment: WorkerEnvironment, task: StepTask) -> Any:
    pipeline = _registry(environment.pipeline_modules).get(task.pipeline)
    step = pipeline.steps[task.step]
    context = StepContext(
        item_id=task.item_id,
        pipeline=task.pipeline,
        pipeline_version=pipeline.version,
        step=task.step,
        attempt=task.attempt,
        storage_url=environment.storage_url,
        work_dir=task.work_dir,
        input_name=task.stored_name,
        record=task.record,
        input_url=task.input_url,
        logger=logging.getLogger(f"conveyor.step.{task.pipeline}.{task.step}"),
    )
    with _time_limit(step.timeout_seconds):
        return step.function(context, **task.inputs)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _node_id() -> str | None:
    try:
        import ray

        if not ray.is_initialized():  # run outside Ray (tests): asking would start Ray
            return None
        return str(ray.get_runtime_context().get_node_id())
    except Exception:
        return None


@contextlib.contextmanager
def _captured_logs() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(min(previous_level or logging.WARNING, logging.INFO))
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the step after ``seconds`` (Ray runs tasks on the worker's main thread)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expire(_signum: int, _frame: Any) -> None:
        raise StepTimeoutError(f"step exceeded its timeout of {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
