"""What the dashboard reads: queue depth over the last hour and step run times, after real work
on a real store (SQLite and PostgreSQL) and Ray."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from conveyor.store.models import Item, utcnow


def _submit(api, *records: dict) -> list[str]:  # type: ignore[no-untyped-def]
    submitted = api.installation.submitter.submit_records("noop", list(records), source="test")
    return [submission.item_id for submission in submitted]


def _created_minutes_ago(api, item_id: str, minutes: float) -> None:  # type: ignore[no-untyped-def]
    with api.installation.sessions.begin() as session:
        moment = utcnow() - timedelta(minutes=minutes)
        session.execute(update(Item).where(Item.id == item_id).values(created_at=moment))


def test_queue_depth_per_minute_rises_with_arrivals_and_falls_as_items_finish(api) -> None:  # type: ignore[no-untyped-def]
    early, _ = _submit(api, {"n": 1}, {"n": 2})
    _created_minutes_ago(api, early, 10.5)
    waiting = api.get("/api/v1/stats").json()
    depth = waiting["queue_depth_per_minute"]  # depth[59] is now, depth[59 - k] k minutes ago
    assert len(depth) == 60 and waiting["queue"] == 2
    assert depth[59] == 2 and depth[49:59] == [1] * 10 and set(depth[:49]) == {0}

    api.installation.controller().run_until_idle(timeout=120)
    drained = api.get("/api/v1/stats").json()
    depth = drained["queue_depth_per_minute"]
    assert drained["queue"] == 0 and depth[59] == 0 and depth[49:59] == [1] * 10
    assert sum(drained["throughput_per_minute"]) == 2


def test_step_durations_give_median_and_p95_per_pipeline_and_step(api) -> None:  # type: ignore[no-untyped-def]
    assert api.get("/api/v1/stats/steps").json()["steps"] == []
    _submit(api, *({"n": n, "sleep_ms": 200} for n in range(3)))
    _submit(api, {"n": 9, "sleep_ms": 200, "fail": "permanent"})
    api.installation.controller().run_until_idle(timeout=120)

    viewer = TestClient(api.app, headers={"Authorization": f"Bearer {api.viewer_token}"})
    body = viewer.get("/api/v1/stats/steps").json()
    assert body["window_seconds"] == 3600 and body["max_runs"] == 1000
    steps = {row["step"]: row for row in body["steps"]}
    order = [row["step"] for row in body["steps"]]
    assert order[0] == "a" and order[-1] == "d" and len(order) == 4  # in DAG order
    assert {row["pipeline"] for row in body["steps"]} == {"noop"}
    assert (steps["a"]["runs"], steps["a"]["failed"]) == (4, 0)
    assert (steps["b"]["runs"], steps["b"]["failed"]) == (4, 1)
    assert (steps["d"]["runs"], steps["d"]["failed"]) == (3, 0)
    assert body["runs"] == sum(row["runs"] for row in body["steps"])
    for row in body["steps"]:
        assert 0.2 <= row["median_seconds"] <= row["p95_seconds"] <= row["max_seconds"] < 10


def test_step_durations_need_credentials(api) -> None:  # type: ignore[no-untyped-def]
    response = TestClient(api.app).get("/api/v1/stats/steps")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
