"""What a committed batch reports to monitoring: pure, no store, no Ray."""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.core.commits import CommitBatch, CommitReport, FinishedRun, ItemChange
from conveyor.core.lifecycle import ItemStatus, StepStatus
from conveyor.engine.metrics import NoMetrics, report_commit

START = datetime(2026, 1, 1, 12, 0, 0)


class Recorder(NoMetrics):
    def __init__(self) -> None:
        self.events: list[tuple] = []  # type: ignore[type-arg]

    def item_finished(self, pipeline: str, status: str) -> None:
        self.events.append(("item", pipeline, status))

    def step_finished(self, pipeline: str, step: str, status: str, seconds: float | None) -> None:
        self.events.append(("step", pipeline, step, status, seconds))

    def step_retried(self, pipeline: str, step: str) -> None:
        self.events.append(("retry", pipeline, step))


def test_committed_outcomes_are_reported_as_written_and_lost_items_are_not() -> None:
    batch = CommitBatch(
        finished=[
            FinishedRun(
                "kept",
                1,
                StepStatus.SUCCEEDED,
                started_at=START,
                finished_at=START + timedelta(seconds=2.5),
                pipeline="p",
                step="a",
            ),
            FinishedRun("kept", 2, StepStatus.CANCELLED, finished_at=START, pipeline="p", step="b"),
            FinishedRun(
                "lost",
                3,
                StepStatus.SUCCEEDED,
                started_at=START,
                finished_at=START,
                pipeline="p",
                step="a",
            ),
        ],
        changes=[
            ItemChange("kept", ItemStatus.SUCCEEDED, pipeline="p"),
            ItemChange("unstored", ItemStatus.SUCCEEDED, pipeline="p"),
            ItemChange("retried", ItemStatus.RETRYING, pipeline="p", step="c"),
            ItemChange("resumed", ItemStatus.RUNNING, pipeline="p"),
            ItemChange("lost", ItemStatus.FAILED, pipeline="p"),
        ],
    )
    recorder = Recorder()
    report = CommitReport(unstored={"unstored": "the tables refused it"}, lost=frozenset({"lost"}))
    report_commit(recorder, batch, report)
    assert recorder.events == [
        ("step", "p", "a", "succeeded", 2.5),
        ("step", "p", "b", "cancelled", None),
        ("item", "p", "succeeded"),
        ("item", "p", "failed"),  # the store could not keep its result
        ("retry", "p", "c"),
    ]
