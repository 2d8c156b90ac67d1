"""Median and 95th percentile step run times per pipeline and step."""

from __future__ import annotations

import pytest

from conveyor.core.durations import StepRunTime, quantile, summarize_durations


def runs(pipeline: str, step: str, *seconds: float, failed: int = 0) -> list[StepRunTime]:
    return [
        StepRunTime(pipeline, step, value, failed=index < failed)
        for index, value in enumerate(seconds)
    ]


def test_quantiles_interpolate_between_ranks() -> None:
    ordered = [float(n) for n in range(1, 101)]  # 1 .. 100
    assert quantile(ordered, 0.5) == pytest.approx(50.5)
    assert quantile(ordered, 0.95) == pytest.approx(95.05)
    assert quantile([3.0], 0.95) == 3.0


def test_one_row_per_pipeline_and_step_in_dag_order() -> None:
    times = (
        runs("noop", "d", 0.2)
        + runs("noop", "a", 1, 2, 3, 4, 100, failed=1)
        + runs("csv", "parse", 0.5)
        + runs("noop", "zzz_removed", 7)
    )
    rows = summarize_durations(times, {"noop": ["a", "b", "c", "d"]})
    assert [(row.pipeline, row.step) for row in rows] == [
        ("csv", "parse"),
        ("noop", "a"),
        ("noop", "d"),
        ("noop", "zzz_removed"),
    ]
    slow = rows[1]
    assert (slow.runs, slow.failed, slow.median_seconds, slow.max_seconds) == (5, 1, 3, 100)
    assert slow.p95_seconds == pytest.approx(80.8)  # 4 + 0.8 * (100 - 4): one slow run shows


def test_nothing_ran_nothing_to_show() -> None:
    assert summarize_durations([]) == []
