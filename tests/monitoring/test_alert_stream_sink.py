"""Fired alerts to a stream: an alerts sink (added through the API) gets exactly one message per
change of an alert's state that Alertmanager's webhook delivers (firing, then resolved; a
repeated notification adds none), through the webhook's own commit and the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.installation import Installation
from conveyor.monitoring.alerts import FIRING, RESOLVED
from conveyor.settings import load_settings
from conveyor.streams.brokers import open_producer
from conveyor.streams.event_sinks import ALERTS
from conveyor.streams.relay import OutboxRelay
from conveyor.streams.sinks import key_header
from support.alerting import webhook_payload
from support.redis_streams import fresh_stream, read_messages

NAME = "ConveyorServingLatencyP99High"


@pytest.fixture
def alert_stream() -> Iterator[str]:
    with fresh_stream() as url:
        yield url


def test_each_alert_change_is_published_once(
    tmp_path: Path, database_url: str, alert_stream: str
) -> None:
    installation = Installation(load_settings(tmp_path / "home", database_url=database_url))
    try:
        client = TestClient(create_app(installation, auth_required=False))
        for name, subject in (("all-alerts", "*"), ("other-alert", "SomethingElse")):
            sink = {"name": name, "url": alert_stream, "kind": ALERTS, "pipeline": subject}
            added = client.post("/api/v1/streams/sinks", json=sink)
            assert added.status_code == 201, added.text
        resolved = webhook_payload(RESOLVED, "2026-11-28T10:05:00Z")
        for payload in (webhook_payload(FIRING), webhook_payload(FIRING), resolved):
            answer = client.post("/api/v1/alerts/webhook", json=payload)
            assert answer.status_code == 200, answer.text
        producer = open_producer(alert_stream, {})
        try:
            relay = OutboxRelay(installation)
            assert relay.publish_batch("all-alerts", producer, key_header([ALERTS])) == 2
            assert relay.publish_batch("other-alert", producer, key_header([ALERTS])) == 0
        finally:
            producer.close()
    finally:
        installation.close()
    messages = read_messages(alert_stream)
    bodies = [json.loads(message.payload) for message in messages]
    assert [(body["name"], body["status"]) for body in bodies] == [(NAME, FIRING), (NAME, RESOLVED)]
    assert all(body["fingerprint"] == "0a1b2c3d4e5f6a7b" for body in bodies)
    assert bodies[0]["labels"]["endpoint"] == "heart" and bodies[0]["severity"] == "warning"
    assert bodies[0]["starts_at"].startswith("2026-11-28T10:00:00.123")
    assert bodies[0]["ends_at"] is None and bodies[1]["ends_at"].startswith("2026-11-28T10:05")
    keys = [message.key.decode() for message in messages if message.key]
    assert keys == [body["alert_event_id"] for body in bodies] and len(set(keys)) == 2
    assert [message.headers["conveyor-alert-event-id"] for message in messages] == keys
