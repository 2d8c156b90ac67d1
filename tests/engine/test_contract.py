"""The engine contract on the wire: plain values that msgpack carries (Ray's fast path, no
pickling), and back to the same dataclasses."""

from __future__ import annotations

from datetime import datetime

import msgpack

from conveyor.engine.contract import StepOutcome, StepTask, WorkerEnvironment


def _through_msgpack(wire: dict) -> dict:  # type: ignore[type-arg]
    return msgpack.unpackb(msgpack.packb(wire), strict_map_key=False)  # type: ignore[no-any-return]


def test_tasks_outcomes_and_the_environment_survive_the_wire() -> None:
    environment = WorkerEnvironment("s3://bucket/conveyor", ("my_pipelines", "more"))
    task = StepTask("0" * 32, "noop", "d", 2, "work/x", None, {"n": 1}, {"b": [1], "c": {"k": 2}})
    outcome = StepOutcome(
        succeeded=False,
        error="RuntimeError: no",
        logs="line\n",
        worker="host:1",
        started_at=datetime(2026, 1, 1, 12, 0, 0, 5),
        finished_at=datetime(2026, 1, 1, 12, 0, 1),
    )
    assert WorkerEnvironment.from_wire(_through_msgpack(environment.to_wire())) == environment
    assert StepTask.from_wire(_through_msgpack(task.to_wire())) == task
    assert StepOutcome.from_wire(_through_msgpack(outcome.to_wire())) == outcome
    assert StepOutcome.from_wire(StepOutcome.failure("lost").to_wire()).started_at is None
