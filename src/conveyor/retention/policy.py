"""Retention policy as plain data and the pure parts of rolling up: period boundaries,
latency histograms, merging minutes into hours, and the cutoffs pruning may use."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MINUTE, HOUR = "minute", "hour"
# Latency histogram bounds of the prediction roll-ups (ms), as the serving metric's buckets.
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 250, 400, 500, 1000, 2500)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept, in days (None: forever)."""

    predictions_days: float | None = 30
    feedback_days: float | None = 90
    step_runs_days: float | None = 180
    minute_rollups_days: float | None = 90
    hour_rollups_days: float | None = 730
    stream_messages_days: float | None = 14  # and only once redelivery is over (docs/streams.md)
    batch_rows: int = 2000
    batch_pause_seconds: float = 0.05
    settle_seconds: float = 120  # rows younger than this are not rolled up yet (late writes)
    chunk_hours: float = 24  # raw rows rolled up per transaction


def policy_from_settings(retention: Any) -> RetentionPolicy:
    """The policy of a ``RetentionSettings`` (conveyor.settings)."""
    return RetentionPolicy(
        predictions_days=retention.predictions_days,
        feedback_days=retention.feedback_days,
        step_runs_days=retention.step_runs_days,
        minute_rollups_days=retention.minute_rollups_days,
        hour_rollups_days=retention.hour_rollups_days,
        stream_messages_days=retention.stream_messages_days,
        batch_rows=retention.batch_rows,
        batch_pause_seconds=retention.batch_pause_seconds,
    )


def period_start(moment: datetime, resolution: str) -> datetime:
    moment = moment.replace(second=0, microsecond=0)
    return moment.replace(minute=0) if resolution == HOUR else moment


def period_length(resolution: str) -> timedelta:
    return timedelta(hours=1) if resolution == HOUR else timedelta(minutes=1)


def cutoff(now: datetime, days: float | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def prune_before(keep_after: datetime | None, rolled_until: datetime | None) -> datetime | None:
    """Rows before the result may go: older than the policy allows *and* rolled up."""
    if keep_after is None or rolled_until is None:
        return None
    return min(keep_after, rolled_until)


def latency_histogram(latencies_ms: Iterable[float]) -> list[int]:
    """Cumulative counts at ``LATENCY_BOUNDS_MS`` and +Inf (Prometheus's convention)."""
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for latency in latencies_ms:
        counts[bisect.bisect_left(LATENCY_BOUNDS_MS, latency)] += 1
    cumulative, total = [], 0
    for count in counts:
        total += count
        cumulative.append(total)
    return cumulative


def histogram_quantile(quantile: float, cumulative: list[int]) -> float | None:
    """Estimate a latency quantile (ms) from a cumulative histogram, linear in a bucket."""
    total = cumulative[-1] if cumulative else 0
    if not total:
        return None
    rank = quantile * total
    index = bisect.bisect_left(cumulative, rank)
    if index >= len(LATENCY_BOUNDS_MS):
        return float(LATENCY_BOUNDS_MS[-1])
    lower = LATENCY_BOUNDS_MS[index - 1] if index else 0.0
    below = cumulative[index - 1] if index else 0
    inside = cumulative[index] - below
    share = (rank - below) / inside if inside else 1.0
    return lower + (LATENCY_BOUNDS_MS[index] - lower) * share


@dataclass
class Aggregate:
    """Sums of one period and series: what a roll-up row holds."""

    count: int = 0
    errors: int = 0
    total: float = 0.0
    maximum: float = 0.0
    buckets: list[int] | None = None

    def add(self, other: Aggregate) -> None:
        self.count += other.count
        self.errors += other.errors
        self.total += other.total
        self.maximum = max(self.maximum, other.maximum)
        if other.buckets is not None:
            mine = self.buckets or [0] * len(other.buckets)
            self.buckets = [a + b for a, b in zip(mine, other.buckets, strict=True)]


def merge_into_hours(
    minutes: Iterable[tuple[datetime, tuple[object, ...], Aggregate]],
) -> dict[tuple[datetime, tuple[object, ...]], Aggregate]:
    """Per-minute aggregates (start, series key, sums) summed per hour and series."""
    hours: dict[tuple[datetime, tuple[object, ...]], Aggregate] = {}
    for start, key, aggregate in minutes:
        hours.setdefault((period_start(start, HOUR), key), Aggregate()).add(aggregate)
    return hours
