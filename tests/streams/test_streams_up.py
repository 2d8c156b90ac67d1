"""`conveyor up` runs the enabled sources' consumers next to the controller: messages published
to a Redis stream become items that run to the end, and /metrics counts them; the sinks' relay
publishes each finished item's result to another stream."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest
import redis
from sqlalchemy import func, select

from conveyor.installation import Installation
from conveyor.store.models import Item
from conveyor.streams.brokers import open_producer
from conveyor.streams.sinks import SinkConfig, add_sink
from conveyor.streams.sources import SourceConfig, add_source
from support.up import ConveyorUp, free_port


def _succeeded(installation: Installation) -> int:
    query = select(func.count()).select_from(Item).where(Item.status == "succeeded")
    with installation.sessions() as session:
        return session.scalar(query) or 0


def _metric(url: str, name: str) -> float | None:
    with urllib.request.urlopen(url, timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_conveyor_up_consumes_the_enabled_sources(
    stream_installation: Installation,
    redis_stream: str,
    redis_client: redis.Redis,
    ray_cluster: str,
) -> None:
    installation = stream_installation
    results_key = redis_stream.rsplit("/", 1)[1] + "-results"
    with installation.sessions.begin() as session:
        add_source(session, SourceConfig("events", redis_stream, "single", "conveyor-events"))
        add_sink(session, SinkConfig("results", f"{redis_stream}-results", "single"))
    producer = open_producer(redis_stream, {})
    for n in range(30):
        producer.publish(json.dumps({"n": n}).encode())
    producer.close()
    metrics_port = free_port()
    environment = {
        "CONVEYOR_DATABASE_URL": installation.settings.resolved_database_url,
        "CONVEYOR_PIPELINES": "support.pipelines",
        "PYTHONPATH": os.environ["PYTHONPATH"],
    }
    up = ConveyorUp(
        installation.settings.home,
        environment,
        "--no-inbox",
        "--no-api",
        "--metrics-port",
        str(metrics_port),
        "--ray-address",
        ray_cluster,
    )
    try:
        deadline = time.monotonic() + 120
        while _succeeded(installation) < 30:
            assert up.process.poll() is None, up.output()
            assert time.monotonic() < deadline, up.output()
            time.sleep(0.2)
        series = 'conveyor_stream_messages_total{outcome="item",source="events"}'
        assert _metric(f"http://127.0.0.1:{metrics_port}/metrics", series) == 30
        while redis_client.xlen(results_key) < 30:
            assert time.monotonic() < deadline, up.output()
            time.sleep(0.2)
        published = [
            json.loads(fields[b"payload"]) for _, fields in redis_client.xrange(results_key)
        ]
    finally:
        assert up.stop() == 0, up.output()
        redis_client.delete(results_key)
    with installation.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 30
        item_ids = set(session.scalars(select(Item.id)))
    assert len(published) == 30 and {body["item_id"] for body in published} == item_ids
    assert {body["status"] for body in published} == {"succeeded"}
