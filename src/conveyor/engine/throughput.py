"""Throughput series and queue-drain estimates: pure functions over timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta

RECENT_MINUTES = 10


def per_minute(finished_at: list[datetime], now: datetime, minutes: int) -> list[int]:
    """Counts of finishes per minute, oldest first, the last entry being the current minute."""
    series = [0] * minutes
    for moment in finished_at:
        age = int((now - moment) / timedelta(minutes=1))
        if 0 <= age < minutes:
            series[minutes - 1 - age] += 1
    return series


def drain_eta_seconds(waiting: int, series: list[int]) -> float | None:
    """Seconds until the queue is empty at the recent rate; None when nothing drains."""
    if waiting == 0:
        return 0.0
    recent = series[-RECENT_MINUTES:]
    rate_per_second = sum(recent) / (len(recent) * 60) if recent else 0.0
    return round(waiting / rate_per_second, 1) if rate_per_second > 0 else None


def queue_depth_per_minute(
    waiting_at_start: int,
    created_at: list[datetime],
    finished_at: list[datetime],
    now: datetime,
    minutes: int,
) -> list[int]:
    """Items waiting or running at the end of each minute, oldest first, the last at ``now``.

    The series starts at ``now - (minutes - 1)`` minutes with ``waiting_at_start`` items (created
    by then and not finished by then); ``created_at`` and ``finished_at`` are the moments after
    that start, up to ``now``, at which items came in and reached a final state."""
    start = now - timedelta(minutes=minutes - 1)
    changes = [0] * minutes
    for moments, sign in ((created_at, 1), (finished_at, -1)):
        for moment in moments:
            if start < moment <= now:
                changes[minutes - 1 - int((now - moment) / timedelta(minutes=1))] += sign
    series, depth = [], waiting_at_start
    for change in changes:
        depth += change
        series.append(max(0, depth))
    return series
