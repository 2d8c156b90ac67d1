"""/api/v1/streams: sources added, listed with their counts (no passwords) and removed."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.installation import Installation
from conveyor.streams.brokers.base import Message
from conveyor.streams.intake import MessageIntake
from conveyor.streams.messages import schema_check


def test_sources_through_the_api(stream_installation: Installation) -> None:
    installation = stream_installation
    client = TestClient(create_app(installation, auth_required=False))
    body = {
        "name": "wearables",
        "url": "redis://:s3cret@127.0.0.1:6379/readings",
        "pipeline": "single",
        "max_queued": 500,
        "options": {"ssl_ca_certs": "/etc/ca.pem"},
        "record_schema": {"type": "object", "required": ["pulse"]},
    }
    added = client.post("/api/v1/streams", json=body)
    assert added.status_code == 201, added.text
    assert added.json()["url"] == "redis://:***@127.0.0.1:6379/readings"
    assert client.post("/api/v1/streams", json=body).json()["error"]["code"] == "already_exists"
    unknown = client.post("/api/v1/streams", json={**body, "name": "x", "pipeline": "nope"})
    assert unknown.status_code == 404
    bad_url = client.post("/api/v1/streams", json={**body, "name": "y", "url": "ftp://h/q"})
    assert bad_url.status_code == 422, bad_url.text

    messages = [Message("readings/1-0", b'{"pulse": 70}'), Message("readings/2-0", b'{"p": 1}')]
    intake = MessageIntake(installation.sessions, installation.submitter)
    check = schema_check(body["record_schema"])  # type: ignore[arg-type]
    intake.take("wearables", installation.registry.get("single"), messages, check)

    [source] = client.get("/api/v1/streams").json()["sources"]
    assert (source["items"], source["dead_letters"], source["messages_last_minute"]) == (1, 1, 2)
    assert source["options"] == ["ssl_ca_certs"] and "s3cret" not in json.dumps(source)
    [letter] = client.get("/api/v1/streams/wearables/dead-letters").json()["dead_letters"]
    assert letter["payload"] == '{"p": 1}' and letter["reason"].startswith("schema:")
    page = client.get("/streams")
    assert page.status_code == 200 and 'data-source="wearables"' in page.text
    assert "redis://:***@127.0.0.1:6379/readings" in page.text and "s3cret" not in page.text
    assert client.delete("/api/v1/streams/wearables").status_code == 204
    assert client.get("/api/v1/streams/wearables").status_code == 404
    assert client.get("/api/v1/streams").json()["sources"] == []


def test_sources_disabled_and_enabled_through_the_api(stream_installation: Installation) -> None:
    client = TestClient(create_app(stream_installation, auth_required=False))
    body = {"name": "events", "url": "redis://127.0.0.1:6379/events", "pipeline": "single"}
    assert client.post("/api/v1/streams", json=body).status_code == 201
    assert client.post("/api/v1/streams/events/disable").json()["enabled"] is False
    assert client.get("/api/v1/streams/events").json()["enabled"] is False
    assert client.post("/api/v1/streams/events/enable").json()["enabled"] is True
    assert client.post("/api/v1/streams/nope/enable").status_code == 404
    named_sinks = client.post("/api/v1/streams", json={**body, "name": "sinks"})
    assert named_sinks.status_code == 422, named_sinks.text


def test_sinks_through_the_api(stream_installation: Installation) -> None:
    client = TestClient(create_app(stream_installation, auth_required=False))
    body = {
        "name": "results",
        "url": "amqp://guest:s3cret@127.0.0.1:5672/?queue=results",
        "pipeline": "single",
        "statuses": ["succeeded"],
    }
    added = client.post("/api/v1/streams/sinks", json=body)
    assert added.status_code == 201, added.text
    assert added.json()["url"] == "amqp://guest:***@127.0.0.1:5672/?queue=results"
    assert (added.json()["outbox"], added.json()["published"]) == (0, 0)
    again = client.post("/api/v1/streams/sinks", json=body)
    assert again.json()["error"]["code"] == "already_exists"
    bad = client.post("/api/v1/streams/sinks", json={**body, "name": "x", "statuses": ["queued"]})
    assert bad.status_code == 422, bad.text
    [sink] = client.get("/api/v1/streams/sinks").json()["sinks"]
    assert sink["statuses"] == ["succeeded"] and "s3cret" not in json.dumps(sink)
    page = client.get("/streams")
    assert page.status_code == 200 and 'data-sink="results"' in page.text
    assert "succeeded items" in page.text and "s3cret" not in page.text
    assert client.delete("/api/v1/streams/sinks/results").status_code == 204
    assert client.delete("/api/v1/streams/sinks/results").status_code == 404
    assert client.get("/api/v1/streams/sinks").json()["sinks"] == []
    events = {**body, "name": "events", "kind": "model_events", "pipeline": "*"}
    assert client.post("/api/v1/streams/sinks", json=events).json()["kind"] == "model_events"
    assert "model events" in client.get("/streams").text
