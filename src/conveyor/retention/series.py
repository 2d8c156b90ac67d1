"""Serving chart ranges and where each part of a range is read from: the raw prediction log,
the minute roll-ups or the hour roll-ups (docs/monitoring.md, "Chart ranges").

Short ranges chart minutes from raw rows wherever they remain (exact percentiles); medium
ranges chart minutes from the minute roll-ups; long ranges chart hours from the hour roll-ups.
Whatever the finer source no longer holds (pruned) or does not hold yet (newer than the
roll-ups' watermark) comes from the next source, so a range spanning pruned raw rows still
shows its old part, and nothing is counted twice: the sources meet at the watermarks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor.retention.policy import HOUR, MINUTE, Aggregate, histogram_quantile, period_start
from conveyor.retention.rollups import prediction_minutes, watermark
from conveyor.retention.tables import PredictionRollup
from conveyor.serving.tables import Prediction

RAW = "raw"  # a segment's source: the prediction log; MINUTE and HOUR: its roll-ups
RANGES = {
    "1h": timedelta(hours=1),
    "3h": timedelta(hours=3),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
RAW_FIRST_SPAN = timedelta(hours=6)  # up to this span: raw rows wherever they remain
MINUTE_SPAN = timedelta(days=2)  # up to this span one point a minute, beyond it one an hour


@dataclass(frozen=True)
class ChartRange:
    since: datetime  # the start of its first period
    until: datetime
    resolution: str  # MINUTE or HOUR: one point per period and version
    raw_first: bool


@dataclass(frozen=True)
class Segment:
    """A part of a chart range read from one source."""

    source: str  # RAW, MINUTE or HOUR
    since: datetime
    until: datetime


def chart_range(since: datetime, until: datetime) -> ChartRange:
    span = until - since
    resolution = HOUR if span > MINUTE_SPAN else MINUTE
    return ChartRange(period_start(since, resolution), until, resolution, span <= RAW_FIRST_SPAN)


def plan(
    chart: ChartRange,
    minutes_until: datetime | None,
    hours_until: datetime | None,
    raw_from: datetime | None,
) -> list[Segment]:
    """The segments of ``chart``, oldest first: each source up to where the next one takes
    over. ``minutes_until``/``hours_until``: the roll-ups' watermarks; ``raw_from``: where the
    endpoint's complete raw minutes start (None: it has no raw rows)."""
    bounds: list[tuple[str, datetime | None]]
    if minutes_until is None:  # nothing rolled up, so nothing pruned either
        bounds = [(RAW, chart.until)]
    elif chart.resolution == HOUR:
        bounds = [(HOUR, hours_until), (MINUTE, minutes_until), (RAW, chart.until)]
    elif chart.raw_first:
        bounds = [(MINUTE, min(raw_from or minutes_until, minutes_until)), (RAW, chart.until)]
    else:
        bounds = [(MINUTE, minutes_until), (RAW, chart.until)]
    segments, start = [], chart.since
    for source, end in bounds:
        if end is not None and min(end, chart.until) > start:
            segments.append(Segment(source, start, min(end, chart.until)))
            start = min(end, chart.until)
    return segments


def plan_for(session: Session, endpoint: str, chart: ChartRange) -> list[Segment]:
    minutes_until = watermark(session, f"predictions:{MINUTE}")
    hours_until = watermark(session, f"predictions:{HOUR}")
    return plan(chart, minutes_until, hours_until, _raw_from(session, endpoint))


def _raw_from(session: Session, endpoint: str) -> datetime | None:
    first = session.scalar(select(func.min(Prediction.ts)).where(Prediction.endpoint == endpoint))
    # The first raw minute may be partly pruned: it comes from the roll-ups.
    return None if first is None else period_start(first, MINUTE) + timedelta(minutes=1)


def aggregates(
    session: Session, endpoint: str, segment: Segment, resolution: str
) -> Iterator[tuple[datetime, int, Aggregate]]:
    """(period start at ``resolution``, version, sums) of the segment's rows; several may
    share a period and version (arms, models, minutes of an hour): the caller adds them."""
    if segment.source == RAW:
        for minute, key, aggregate in prediction_minutes(
            session, segment.since, segment.until, endpoint
        ):
            yield period_start(minute, resolution), int(key[2]), aggregate
        return
    rows = session.execute(
        select(PredictionRollup.__table__).where(
            PredictionRollup.endpoint == endpoint,
            PredictionRollup.resolution == segment.source,
            PredictionRollup.period_start >= segment.since,
            PredictionRollup.period_start < segment.until,
        )
    )
    for row in rows:
        aggregate = Aggregate(
            row.requests, row.errors, row.latency_sum_ms, row.latency_max_ms,
            list(row.latency_buckets),
        )  # fmt: skip
        yield period_start(row.period_start, resolution), row.version, aggregate


def entries(merged: dict[tuple[datetime, int], Aggregate]) -> list[dict[str, Any]]:
    """Chart entries with p50 and p99 estimated from the latency histograms."""
    return [
        {
            "minute": start,
            "version": version,
            "records": totals.count,
            "errors": totals.errors,
            "error_rate": totals.errors / totals.count if totals.count else 0.0,
            "p50_ms": histogram_quantile(0.5, totals.buckets or []),
            "p99_ms": histogram_quantile(0.99, totals.buckets or []),
        }
        for (start, version), totals in sorted(merged.items())
    ]
