"""Throughput, queue depth and drain estimates from timestamps alone."""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.engine.throughput import drain_eta_seconds, per_minute, queue_depth_per_minute

NOW = datetime(2026, 11, 25, 14, 0, 30)


def minutes_ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def test_finishes_are_counted_in_their_minute_the_current_one_last() -> None:
    series = per_minute(
        [minutes_ago(0.1), minutes_ago(0.9), minutes_ago(2.5), minutes_ago(9)], NOW, 5
    )
    assert series == [0, 0, 1, 0, 2]


def test_queue_depth_follows_arrivals_and_finishes() -> None:
    created = [minutes_ago(3.5), minutes_ago(3.2), minutes_ago(2.5), minutes_ago(0.2)]
    finished = [minutes_ago(2.1), minutes_ago(1.5), minutes_ago(1.2)]
    # two items were already waiting 4 minutes ago; points are at now-4 ... now
    assert queue_depth_per_minute(2, created, finished, NOW, 5) == [2, 4, 4, 2, 3]


def test_queue_depth_ignores_moments_outside_the_window_and_never_goes_negative() -> None:
    outside = [minutes_ago(4), minutes_ago(30), NOW + timedelta(seconds=1)]
    assert queue_depth_per_minute(0, outside, [], NOW, 5) == [0] * 5
    assert queue_depth_per_minute(0, [], [minutes_ago(1)], NOW, 3) == [0, 0, 0]
    assert queue_depth_per_minute(7, [], [], NOW, 60) == [7] * 60


def test_drain_estimate_uses_the_last_ten_minutes() -> None:
    assert drain_eta_seconds(0, [0] * 60) == 0.0
    assert drain_eta_seconds(5, [0] * 60) is None
    assert drain_eta_seconds(30, [100] * 50 + [6] * 10) == 300.0
