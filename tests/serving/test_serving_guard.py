"""Automatic rollback of a canary that breaches the serving alert thresholds."""

from __future__ import annotations

import json

from sqlalchemy import select

from conveyor.serving.guard import ROLLED_BACK_EVENT, breach, guarded_arms, new_window
from conveyor.serving.routing import parse_config
from conveyor.store.models import ModelEvent
from conveyor.streams.event_sinks import MODEL_EVENTS
from conveyor.streams.sinks import SinkConfig, add_sink
from conveyor.streams.tables import StreamOutboxRow

CANARY = {
    "model": "heart",
    "arms": [
        {"name": "stable", "target": "champion", "weight": 50},
        {"name": "canary", "target": "challenger", "weight": 50},
    ],
    "auto_rollback": True,
}


def window(outcomes: list[tuple[float, bool]]):  # type: ignore[no-untyped-def]
    found = new_window()
    found.extend(outcomes)
    return found


def test_breaches_follow_the_alert_thresholds() -> None:
    assert breach(window([(0.5, True)] * 49)) is None  # too few to judge
    assert breach(window([(0.01, False)] * 200)) is None
    assert "server errors" in breach(window([(0.01, False)] * 90 + [(0.01, True)] * 10))
    assert "p99 latency 500 ms" in breach(window([(0.01, False)] * 95 + [(0.5, False)] * 5))
    assert guarded_arms(parse_config(CANARY)) == ["canary"]
    assert guarded_arms(parse_config(CANARY | {"auto_rollback": False})) == []


def test_a_breaching_canary_loses_its_traffic(sqlite_serving, heart_record) -> None:
    serving = sqlite_serving
    with serving.installation.sessions.begin() as session:  # the rollback goes to a stream too
        add_sink(session, SinkConfig("events", "redis://127.0.0.1/e", "heart", {}, [MODEL_EVENTS]))
    assert serving.client.put("/api/v1/endpoints/heart/routing", json=CANARY).status_code == 200
    serving.service.reloader.refresh()
    arms = {serving.predict(heart_record, params={"key": f"u{n}"}).json()["arm"] for n in range(60)}
    assert arms == {"stable", "canary"}
    assert serving.service.check_canaries() == []  # fast and healthy: nothing happens
    for _ in range(60):
        serving.service.guard.record("heart", "canary", 0.9, failed=False)  # as slow requests would
    [done] = serving.service.check_canaries()
    assert done.startswith("heart/canary: p99 latency")
    routing = serving.client.get("/api/v1/endpoints/heart/routing").json()
    assert routing["updated_by"] == "auto-rollback"
    assert [(a["name"], a["weight"]) for a in routing["arms"]] == [("stable", 50), ("canary", 0)]
    serving.service.reloader.refresh()
    arms = {serving.predict(heart_record, params={"key": f"u{n}"}).json()["arm"] for n in range(60)}
    assert arms == {"stable"}
    with serving.installation.sessions() as session:
        [event] = session.scalars(select(ModelEvent).where(ModelEvent.type == ROLLED_BACK_EVENT))
    assert event.payload["arm"] == "canary" and event.payload["version"] == 2
    with serving.installation.sessions() as session:
        [message] = [json.loads(row.payload) for row in session.scalars(select(StreamOutboxRow))]
    assert (message["event"], message["endpoint"], message["arm"]) == (
        "canary_rollback",
        "heart",
        "canary",
    )
    assert message["version"] == 2 and message["actor"] == "auto-rollback"
    assert serving.service.check_canaries() == []  # once only
