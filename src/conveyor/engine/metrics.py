"""What the controller tells monitoring, and when.

The controller reports through :class:`EngineMetrics` only; ``conveyor.monitoring`` implements it
with Prometheus counters. Outcomes are reported from the commit batch *after* the loop's fenced
commit, and only for items whose lease held, so an item is counted once even when another
controller takes it over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from conveyor.core.commits import CommitBatch, CommitReport
from conveyor.core.lifecycle import FINAL_STATUSES, ItemStatus


class EngineMetrics(Protocol):
    def item_finished(self, pipeline: str, status: str) -> None: ...

    def step_finished(
        self, pipeline: str, step: str, status: str, seconds: float | None
    ) -> None: ...

    def step_retried(self, pipeline: str, step: str) -> None: ...

    def loop_finished(self, lag_seconds: float, inflight_items: int) -> None: ...

    def leases_renewed(self, count: int) -> None: ...

    def leases_lost(self, count: int) -> None: ...

    def leases_taken_over(self, count: int) -> None: ...


class NoMetrics:
    """For controllers nobody scrapes (benchmarks, one-off runs)."""

    def item_finished(self, pipeline: str, status: str) -> None:
        pass

    def step_finished(self, pipeline: str, step: str, status: str, seconds: float | None) -> None:
        pass

    def step_retried(self, pipeline: str, step: str) -> None:
        pass

    def loop_finished(self, lag_seconds: float, inflight_items: int) -> None:
        pass

    def leases_renewed(self, count: int) -> None:
        pass

    def leases_lost(self, count: int) -> None:
        pass

    def leases_taken_over(self, count: int) -> None:
        pass


def report_commit(metrics: EngineMetrics, batch: CommitBatch, report: CommitReport) -> None:
    """Count what a committed batch did, as the store wrote it, leaving out items whose lease
    was lost."""
    for run in batch.finished:
        if run.item_id in report.lost:
            continue
        seconds = None
        if run.started_at is not None and run.finished_at is not None:
            seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
        metrics.step_finished(run.pipeline, run.step, run.status.value, seconds)
    for change in batch.changes:
        if change.item_id in report.lost:
            continue
        status = report.written_status(change)
        if status in FINAL_STATUSES:
            metrics.item_finished(change.pipeline, status.value)
        elif status == ItemStatus.RETRYING:
            metrics.step_retried(change.pipeline, change.step)


@dataclass
class ControllerStats:
    """What one controller committed, counted in its process (benchmarks, tests)."""

    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    retried_steps: int = 0
    loop_lag_seconds: float = 0.0

    def count(self, batch: CommitBatch, report: CommitReport) -> None:
        """Count what the store wrote, not what the controller asked for."""
        for change in batch.changes:
            if change.item_id in report.lost:
                continue
            status = report.written_status(change)
            if status == ItemStatus.SUCCEEDED:
                self.succeeded += 1
            elif status == ItemStatus.FAILED:
                self.failed += 1
            elif status == ItemStatus.CANCELLED:
                self.cancelled += 1
            elif status == ItemStatus.RETRYING:
                self.retried_steps += 1
