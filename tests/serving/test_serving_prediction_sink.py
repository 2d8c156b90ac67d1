"""Feature capture to a stream: a predictions sink of the heart endpoint (added through the API)
gets exactly one message per answered prediction, with the request's features and the answer,
keyed by the prediction id, and one per label sent later; each goes through the commit of the
prediction log or of the feedback, and the outbox."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conveyor.installation import Installation
from conveyor.serving.predlog import PredictionLog
from conveyor.serving.spool import PredictionSpool
from conveyor.settings import load_settings
from conveyor.streams.brokers import open_consumer, open_producer
from conveyor.streams.event_sinks import PREDICTIONS, write_predictions
from conveyor.streams.relay import OutboxRelay
from conveyor.streams.sinks import SinkConfig, add_sink, key_header
from conveyor.streams.tables import StreamOutboxRow
from support.brokers import OwnRedis
from support.redis_streams import fresh_stream, read_messages


@pytest.fixture
def stream_url() -> Iterator[str]:
    with fresh_stream() as url:
        yield url


def test_each_prediction_is_published_once_with_its_features(
    serving: Any, heart_record: dict[str, Any], stream_url: str
) -> None:
    sink = {"name": "heart-capture", "url": stream_url, "kind": PREDICTIONS, "pipeline": "heart"}
    added = serving.client.post("/api/v1/streams/sinks", json=sink)
    assert added.status_code == 201, added.text
    assert added.json()["kind"] == PREDICTIONS
    ids: list[str] = []
    for body in (heart_record, [heart_record, heart_record]):
        answer = serving.predict(body)
        assert answer.status_code == 200, answer.text
        ids += [prediction["id"] for prediction in answer.json()["predictions"]]
    labelled = serving.client.post(f"/api/v1/predictions/{ids[0]}/feedback", json={"label": 1})
    assert labelled.status_code == 201, labelled.text
    serving.service.log.flush()

    producer = open_producer(stream_url, {})
    try:
        relay = OutboxRelay(serving.installation)
        assert relay.publish_batch("heart-capture", producer, key_header([PREDICTIONS])) == 4
    finally:
        producer.close()
    messages = read_messages(stream_url)
    bodies = [json.loads(message.payload) for message in messages]
    keys = [message.key.decode() for message in messages if message.key]
    assert [message.headers["conveyor-message-id"] for message in messages] == keys
    [label] = [body for body in bodies if body["type"] == "feedback"]
    assert (label["prediction_id"], label["kind"], label["value"]) == (ids[0], "label", 1)
    assert keys[bodies.index(label)] == label["feedback_id"]
    predictions = [body for body in bodies if body["type"] == "prediction"]
    assert sorted(body["prediction_id"] for body in predictions) == sorted(ids)
    assert [key for key in keys if key != label["feedback_id"]] == [
        body["prediction_id"] for body in predictions
    ]
    for body in predictions:
        assert body["endpoint"] == "heart" and body["model"] == "heart"
        assert body["version"] == 1 and body["arm"] == "champion"
        assert body["features"] == heart_record
        assert body["output"]["label"] in (0, 1) and body["error"] is None


def test_predictions_wait_out_a_broker_outage(
    serving: Any, heart_record: dict[str, Any], tmp_path: Path
) -> None:
    broker = OwnRedis(tmp_path / "redis")  # a port of its own, not listening yet: the outage
    url = f"redis://127.0.0.1:{broker.port}/captured"
    sink = {"name": "capture", "url": url, "kind": PREDICTIONS, "pipeline": "heart"}
    assert serving.client.post("/api/v1/streams/sinks", json=sink).status_code == 201
    ids = [serving.predict(heart_record).json()["predictions"][0]["id"] for _ in range(5)]
    serving.service.log.flush()
    stop = threading.Event()
    thread = OutboxRelay(serving.installation, refresh_seconds=0.2).start(stop)
    try:
        wait_until(lambda: _sink(serving)["last_error"], "the relay to fail")
        assert _sink(serving)["outbox"] == 5
        broker.start()
        wait_until(lambda: _sink(serving)["outbox"] == 0, "the outbox to empty")
    finally:
        stop.set()
        thread.join(30)
    try:
        consumer = open_consumer(url, "test-reader", "reader", {})
        messages = consumer.fetch(100, 1.0)
        consumer.close()
    finally:
        broker.stop()
    bodies = [json.loads(message.payload) for message in messages]
    assert sorted(body["prediction_id"] for body in bodies) == sorted(ids)
    assert _sink(serving)["published"] == 5 and _sink(serving)["last_error"] is None


def _sink(serving: Any) -> dict[str, Any]:
    [found] = serving.client.get("/api/v1/streams/sinks").json()["sinks"]
    return dict(found)


def wait_until(condition: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.1)


def test_a_spooled_batch_is_captured_once_when_written_back(
    tmp_path: Path, sqlite_url: str
) -> None:
    installation = Installation(load_settings(tmp_path / "home", database_url=sqlite_url))
    with installation.sessions.begin() as session:
        add_sink(session, SinkConfig("capture", "redis://127.0.0.1/c", "*", {}, [PREDICTIONS]))
    spool = PredictionSpool(tmp_path / "spool")
    log = PredictionLog(installation.sessions, spool=spool, outbox=write_predictions)
    rows = [_logged(n) for n in range(3)]
    log.add(dict(rows[0]))  # committed before the connection dropped, and spooled too
    log.flush()
    assert spool.keep(rows, [])
    assert log.replay() == 2
    with installation.sessions() as session:
        keys = list(session.scalars(select(StreamOutboxRow.item_id)))
    installation.close()
    assert sorted(keys) == sorted(row["id"] for row in rows)


def _logged(n: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex, "ts": datetime(2026, 11, 29, 9, 0, n), "endpoint": "heart",
        "model": "heart", "version": 1, "dataset_sha256": None, "features": {"age": 60 + n},
        "output": {"label": 1}, "latency_ms": 1.0, "request_key": None, "arm": "champion",
        "error": None,
    }  # fmt: skip
