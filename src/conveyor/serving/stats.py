"""Serving statistics of an endpoint per minute or hour and version: throughput, error rate
and latency percentiles, from the prediction log (one row per answered or refused record) and
its roll-ups (conveyor.retention.series chooses which for each part of a range)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.retention.policy import Aggregate
from conveyor.retention.series import (
    RAW,
    ChartRange,
    Segment,
    aggregates,
    chart_range,
    entries,
    plan_for,
)
from conveyor.serving.tables import Prediction
from conveyor.store.models import utcnow

MAX_ROWS = 500_000


def minute_series(rows: Iterable[tuple[datetime, int, float, str | None]]) -> list[dict[str, Any]]:
    """``rows``: (time, version, latency ms, error); one entry per (minute, version)."""
    groups: dict[tuple[datetime, int], list[tuple[float, bool]]] = defaultdict(list)
    for moment, version, latency_ms, error in rows:
        groups[(moment.replace(second=0, microsecond=0), version)].append(
            (latency_ms, error is not None)
        )
    series = []
    for (minute, version), values in sorted(groups.items()):
        latencies = np.array([latency for latency, _ in values])
        errors = sum(failed for _, failed in values)
        series.append(
            {
                "minute": minute,
                "version": version,
                "records": len(values),
                "errors": errors,
                "error_rate": errors / len(values),
                "p50_ms": float(np.percentile(latencies, 50)),
                "p99_ms": float(np.percentile(latencies, 99)),
            }
        )
    return series


@dataclass
class EndpointChart:
    range: ChartRange
    segments: list[Segment]  # where each part of the range was read from
    entries: list[dict[str, Any]]  # per period and version, oldest first


def endpoint_chart(session: Session, endpoint: str, chart: ChartRange) -> EndpointChart:
    """Per period and version over ``chart``: from raw rows, minute or hour roll-ups as
    ``conveyor.retention.series.plan`` decides (docs/monitoring.md, "Chart ranges")."""
    segments = plan_for(session, endpoint, chart)
    exact: list[dict[str, Any]] = []
    merged: dict[tuple[datetime, int], Aggregate] = defaultdict(Aggregate)
    for segment in segments:
        if segment.source == RAW and chart.raw_first:
            exact += minute_series(_raw_rows(session, endpoint, segment))
            continue
        for start, version, aggregate in aggregates(session, endpoint, segment, chart.resolution):
            merged[(start, version)].add(aggregate)
    found = sorted(exact + entries(merged), key=lambda entry: (entry["minute"], entry["version"]))
    return EndpointChart(chart, segments, found)


def endpoint_series(
    session: Session, endpoint: str, since: datetime, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Per period and version from ``since`` to ``until`` (now)."""
    chart = chart_range(since, until or utcnow())
    return endpoint_chart(session, endpoint, chart).entries


def _raw_rows(
    session: Session, endpoint: str, segment: Segment
) -> list[tuple[datetime, int, float, str | None]]:
    rows = session.execute(
        select(Prediction.ts, Prediction.version, Prediction.latency_ms, Prediction.error)
        .where(
            Prediction.endpoint == endpoint,
            Prediction.ts >= segment.since,
            Prediction.ts < segment.until,
        )
        .order_by(Prediction.ts.desc())
        .limit(MAX_ROWS)
    ).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]
