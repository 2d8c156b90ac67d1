"""Per-minute serving statistics from the roll-ups, for chart ranges whose raw rows are gone
(or not yet needed): the same entries as ``conveyor.serving.stats.minute_series``, with p50
and p99 estimated from the roll-ups' latency histograms."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor.retention.policy import MINUTE, Aggregate, histogram_quantile, period_start
from conveyor.retention.rollups import watermark
from conveyor.retention.tables import PredictionRollup
from conveyor.serving.tables import Prediction


def raw_from(session: Session, endpoint: str) -> datetime | None:
    """Minutes before the result are charted from the roll-ups (their raw rows were pruned,
    or the first one partly); None: no roll-ups yet, everything from raw rows."""
    rolled_until = watermark(session, f"predictions:{MINUTE}")
    if rolled_until is None:
        return None
    first = session.scalar(select(func.min(Prediction.ts)).where(Prediction.endpoint == endpoint))
    if first is None:
        return rolled_until
    # The first raw minute may be partly pruned: it too comes from the roll-ups.
    return min(rolled_until, period_start(first, MINUTE) + timedelta(minutes=1))


def rollup_series(
    session: Session, endpoint: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    rows = session.execute(
        select(PredictionRollup.__table__).where(
            PredictionRollup.endpoint == endpoint,
            PredictionRollup.resolution == MINUTE,
            PredictionRollup.period_start >= period_start(since, MINUTE),
            PredictionRollup.period_start < until,
        )
    )
    merged: dict[tuple[datetime, int], Aggregate] = defaultdict(Aggregate)
    for row in rows:
        merged[(row.period_start, row.version)].add(
            Aggregate(row.requests, row.errors, 0.0, 0.0, list(row.latency_buckets))
        )
    return [
        {
            "minute": minute,
            "version": version,
            "records": totals.count,
            "errors": totals.errors,
            "error_rate": totals.errors / totals.count if totals.count else 0.0,
            "p50_ms": histogram_quantile(0.5, totals.buckets or []),
            "p99_ms": histogram_quantile(0.99, totals.buckets or []),
        }
        for (minute, version), totals in sorted(merged.items())
    ]
