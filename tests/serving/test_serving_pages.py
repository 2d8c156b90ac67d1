"""The endpoint pages: routing, per-version charts, quality and experiments with intervals."""

from __future__ import annotations

import json
import random
import re
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from conveyor.retention.maintenance import run_maintenance
from conveyor.retention.policy import RetentionPolicy
from conveyor.serving.tables import Prediction
from conveyor.store.models import utcnow


def test_endpoint_pages_show_routing_charts_quality_and_experiments(
    sqlite_serving, heart_record
) -> None:
    serving = sqlite_serving
    answer = serving.predict([heart_record] * 2).json()
    for prediction in answer["predictions"]:
        url = f"/api/v1/predictions/{prediction['id']}/feedback"
        serving.client.post(url, json={"label": prediction["label"]})
    serving.client.post(
        "/api/v1/experiments",
        json={"endpoint": "heart", "name": "first look", "metric": "accuracy"},
    )
    listing = serving.client.get("/endpoints")
    assert listing.status_code == 200
    assert 'href="/endpoints/heart"' in listing.text and 'href="/endpoints/movies"' in listing.text
    page = serving.client.get("/endpoints/heart")
    assert page.status_code == 200
    chart = json.loads(
        re.search(r'id="endpoint-chart-data">(.*?)</script>', page.text, re.S).group(1)
    )
    assert chart["versions"]["1"]["records"] == [2] and len(chart["times"]) == 1
    quality = json.loads(
        re.search(r'id="quality-chart-data">(.*?)</script>', page.text, re.S).group(1)
    )
    assert quality["versions"]["1"]["quality"] == [1.0] and len(quality["times"]) == 1
    assert "first look" in page.text and "2 / 2" in page.text  # experiment arm and quality
    assert 'id="routing-config"' in page.text  # no logins here: an admin may edit
    assert serving.client.get("/endpoints/nope").status_code == 404


def _chart_of(page: str) -> dict:
    found = re.search(r'id="endpoint-chart-data">(.*?)</script>', page, re.S)
    assert found, "no chart data on the page"
    return json.loads(found.group(1))


def test_the_range_buttons_chart_a_month_from_the_roll_ups_after_pruning(serving) -> None:
    now = utcnow()
    rng = random.Random(7)
    moments = [now - timedelta(hours=rng.uniform(1, 20 * 24)) for _ in range(600)]
    rows = [
        {"id": uuid.uuid4().hex, "ts": moment, "endpoint": "heart", "model": "heart",
         "version": 1, "latency_ms": rng.uniform(1, 30), "arm": "champion", "error": None}
        for moment in moments
    ]  # fmt: skip
    with serving.installation.sessions.begin() as session:
        session.execute(Prediction.__table__.insert(), rows)
    run_maintenance(serving.installation.sessions, RetentionPolicy(predictions_days=2), now=now)
    with serving.installation.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) < 200  # pruned

    page = serving.client.get("/endpoints/heart", params={"range": "30d"})
    assert page.status_code == 200
    chart = _chart_of(page.text)
    assert sum(r for r in chart["versions"]["1"]["records"] if r) == len(rows)
    assert all(t % 3600 == 0 for t in chart["times"])  # one point an hour
    assert 'href="/endpoints/heart?range=30d#traffic" aria-current="page"' in page.text
    assert 'href="/endpoints/heart?range=1h#traffic"' in page.text and "per hour" in page.text
    assert "hour roll-ups" in page.text
    day = _chart_of(serving.client.get("/endpoints/heart", params={"range": "24h"}).text)
    assert sum(r for r in day["versions"]["1"]["records"] if r) == sum(
        m >= now - timedelta(days=1) for m in moments
    )

    stats = serving.client.get("/api/v1/endpoints/heart/stats", params={"range": "30d"}).json()
    assert stats["resolution"] == "hour"
    assert [s["source"] for s in stats["sources"]] == ["hour", "minute", "raw"]
    assert sum(m["records"] for m in stats["minutes"]) == len(rows)
    # An hour boundary: the hour roll-ups answer a 7-day window, and a bucket cut by `since`
    # would count the whole hour.
    since = (now - timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
    week = {"since": since.isoformat(), "until": now.isoformat()}
    by_times = serving.client.get("/api/v1/endpoints/heart/stats", params=week).json()
    assert sum(m["records"] for m in by_times["minutes"]) == sum(m >= since for m in moments)
    for wrong in ({"range": "2y"}, {"since": now.isoformat(), "until": week["since"]}):
        answer = serving.client.get("/api/v1/endpoints/heart/stats", params=wrong)
        assert answer.status_code == 422, answer.text
