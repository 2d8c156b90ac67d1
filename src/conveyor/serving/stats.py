"""Per-minute serving statistics of an endpoint from the prediction log (one row per
answered or refused record): throughput, error rate and latency percentiles per version."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.retention.series import raw_from, rollup_series
from conveyor.serving.tables import Prediction

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


def endpoint_series(session: Session, endpoint: str, since: datetime) -> list[dict[str, Any]]:
    """Per minute and version since ``since``: from the raw prediction log, and from the
    roll-ups for minutes whose raw rows retention has pruned (docs/monitoring.md)."""
    older: list[dict[str, Any]] = []
    boundary = raw_from(session, endpoint)
    if boundary is not None and since < boundary:
        older, since = rollup_series(session, endpoint, since, boundary), boundary
    rows = session.execute(
        select(Prediction.ts, Prediction.version, Prediction.latency_ms, Prediction.error)
        .where(Prediction.endpoint == endpoint, Prediction.ts >= since)
        .order_by(Prediction.ts.desc())
        .limit(MAX_ROWS)
    ).all()
    return older + minute_series((row[0], row[1], row[2], row[3]) for row in rows)
