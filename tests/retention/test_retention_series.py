"""Chart ranges: each part of a range is read from raw rows, minute or hour roll-ups, and a
range read after retention pruned its raw rows (and old minute roll-ups) shows the same
figures as before pruning."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from conveyor.installation import Installation
from conveyor.retention.maintenance import run_maintenance
from conveyor.retention.policy import HOUR, MINUTE, RetentionPolicy
from conveyor.retention.series import RANGES, RAW, ChartRange, Segment, chart_range, plan
from conveyor.retention.tables import PredictionRollup
from conveyor.serving.stats import EndpointChart, endpoint_chart
from conveyor.serving.tables import Prediction
from conveyor.settings import load_settings

NOW = datetime(2026, 11, 28, 12, 0, 30)
DAYS = 29.5  # raw rows over the days before NOW
POLICY = RetentionPolicy(
    predictions_days=2,
    minute_rollups_days=7,  # the 30-day chart's old part exists only as hours
    hour_rollups_days=None,
    batch_rows=1000,
    batch_pause_seconds=0.0,
)


def test_the_span_picks_the_resolution_and_whether_raw_rows_come_first() -> None:
    def picked(name: str) -> tuple[str, bool]:
        chart = chart_range(NOW - RANGES[name], NOW)
        return chart.resolution, chart.raw_first

    assert picked("1h") == picked("3h") == (MINUTE, True)
    assert picked("24h") == (MINUTE, False)
    assert picked("7d") == picked("30d") == (HOUR, False)
    assert chart_range(NOW - RANGES["7d"], NOW).since == datetime(2026, 11, 21, 12, 0)
    assert chart_range(NOW - RANGES["1h"], NOW).since == datetime(2026, 11, 28, 11, 0)


def _at(hours_before: float) -> datetime:
    return NOW - timedelta(hours=hours_before)


def _sources(segments: list[Segment]) -> list[tuple[str, datetime, datetime]]:
    return [(s.source, s.since, s.until) for s in segments]


def test_the_plan_meets_at_the_watermarks() -> None:
    minutes_until, hours_until = datetime(2026, 11, 28, 11, 58), datetime(2026, 11, 28, 11)
    month = ChartRange(datetime(2026, 10, 29, 12), NOW, HOUR, False)
    assert _sources(plan(month, minutes_until, hours_until, _at(48))) == [
        (HOUR, month.since, hours_until),
        (MINUTE, hours_until, minutes_until),
        (RAW, minutes_until, NOW),
    ]
    day = ChartRange(_at(24), NOW, MINUTE, False)
    assert _sources(plan(day, minutes_until, hours_until, _at(2))) == [
        (MINUTE, day.since, minutes_until),
        (RAW, minutes_until, NOW),
    ]
    # Short ranges: raw rows wherever they remain, the roll-ups only where they are gone.
    three_hours = ChartRange(_at(3), NOW, MINUTE, True)
    assert _sources(plan(three_hours, minutes_until, hours_until, _at(2))) == [
        (MINUTE, three_hours.since, _at(2)),
        (RAW, _at(2), NOW),
    ]
    assert _sources(plan(three_hours, minutes_until, hours_until, _at(5))) == [
        (RAW, three_hours.since, NOW)
    ]
    # Nothing rolled up yet (so nothing pruned): raw rows only, whatever the range.
    assert _sources(plan(month, None, None, _at(700))) == [(RAW, month.since, NOW)]


@pytest.fixture
def installation(tmp_path: Path, database_url: str) -> Iterator[Installation]:
    built = Installation(load_settings(tmp_path / "home", database_url=database_url))
    yield built
    built.close()


def _predictions(rng: random.Random, count: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(count):
        moment = NOW - timedelta(seconds=rng.uniform(0, DAYS * 86400))
        rows.append(
            {
                "id": uuid.uuid4().hex, "ts": moment, "endpoint": rng.choice(["heart", "movies"]),
                "model": "m", "version": rng.choice([1, 2]), "dataset_sha256": None,
                "features": None, "output": None, "request_key": None,
                "latency_ms": round(rng.lognormvariate(2, 1.2), 3),
                "arm": rng.choice(["champion", "canary"]),
                "error": "boom" if rng.random() < 0.05 else None,
            }
        )  # fmt: skip
    return rows


def _charts(installation: Installation) -> dict[str, EndpointChart]:
    with installation.sessions() as session:
        return {
            name: endpoint_chart(session, "heart", chart_range(NOW - span, NOW))
            for name, span in RANGES.items()
        }


def _totals(chart: EndpointChart) -> Counter[tuple[str, int]]:
    totals: Counter[tuple[str, int]] = Counter()
    for entry in chart.entries:
        totals[("records", entry["version"])] += entry["records"]
        totals[("errors", entry["version"])] += entry["errors"]
    return totals


def _sent(rows: list[dict[str, Any]], since: datetime) -> Counter[tuple[str, int]]:
    sent: Counter[tuple[str, int]] = Counter()
    for row in rows:
        if row["endpoint"] == "heart" and since <= row["ts"] < NOW:
            sent[("records", row["version"])] += 1
            sent[("errors", row["version"])] += row["error"] is not None
    return sent


def test_ranges_show_the_same_figures_after_pruning(installation: Installation) -> None:
    rows = _predictions(random.Random(30), 4000)
    with installation.sessions.begin() as session:
        session.execute(Prediction.__table__.insert(), rows)
    before = _charts(installation)
    assert all(s.source == RAW for chart in before.values() for s in chart.segments)

    report = run_maintenance(installation.sessions, POLICY, now=NOW)

    with installation.sessions() as session:
        oldest_raw = session.scalar(select(func.min(Prediction.ts)))
        oldest_minute = session.scalar(
            select(func.min(PredictionRollup.period_start)).where(
                PredictionRollup.resolution == MINUTE
            )
        )
    assert oldest_raw >= NOW - timedelta(days=2) and report.pruned["predictions"] > 3000
    assert oldest_minute >= NOW - timedelta(days=7) - timedelta(hours=1)
    assert report.pruned["predictions:minute"] > 0
    after = _charts(installation)
    assert [s.source for s in after["30d"].segments] == [HOUR, MINUTE, RAW]
    assert [s.source for s in after["24h"].segments] == [MINUTE, RAW]
    assert [s.source for s in after["1h"].segments] == [RAW]
    for name in RANGES:
        since = after[name].range.since
        assert _totals(after[name]) == _totals(before[name]) == _sent(rows, since), name
        if not after[name].range.raw_first:
            # Roll-ups keep the raw rows' latency histograms: the same percentiles too.
            assert after[name].entries == before[name].entries, name
    hours = {entry["minute"] for entry in after["30d"].entries}
    assert all(hour.minute == 0 for hour in hours) and len(hours) > 24 * 20
    minutes = [entry["minute"] for entry in after["24h"].entries]
    assert len(minutes) > 30 and any(minute.minute != 0 for minute in minutes)
