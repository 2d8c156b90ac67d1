"""How long steps take: median and 95th percentile per pipeline and step, over recent runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StepRunTime:
    """A finished step run, as the ``conveyor_step_duration_seconds`` histogram observes it."""

    pipeline: str
    step: str
    seconds: float
    failed: bool


@dataclass(frozen=True)
class StepDurations:
    pipeline: str
    step: str
    runs: int
    failed: int
    median_seconds: float
    p95_seconds: float
    max_seconds: float


def quantile(ordered: Sequence[float], share: float) -> float:
    """Linear interpolation between the closest ranks of sorted, non-empty values."""
    position = share * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def summarize_durations(
    runs: Iterable[StepRunTime], step_order: Mapping[str, Sequence[str]] | None = None
) -> list[StepDurations]:
    """One row per pipeline and step that ran, by pipeline name, then in ``step_order`` (a
    pipeline's steps in DAG order; steps not listed there come after, by name)."""
    grouped: dict[tuple[str, str], list[StepRunTime]] = {}
    for run in runs:
        grouped.setdefault((run.pipeline, run.step), []).append(run)
    order = step_order or {}

    def rank(key: tuple[str, str]) -> tuple[str, int, str]:
        steps = list(order.get(key[0], ()))
        return key[0], steps.index(key[1]) if key[1] in steps else len(steps), key[1]

    return [
        _summary(pipeline, step, grouped[pipeline, step])
        for pipeline, step in sorted(grouped, key=rank)
    ]


def _summary(pipeline: str, step: str, runs: list[StepRunTime]) -> StepDurations:
    seconds = sorted(run.seconds for run in runs)
    return StepDurations(
        pipeline=pipeline,
        step=step,
        runs=len(runs),
        failed=sum(run.failed for run in runs),
        median_seconds=round(quantile(seconds, 0.5), 4),
        p95_seconds=round(quantile(seconds, 0.95), 4),
        max_seconds=round(seconds[-1], 4),
    )
