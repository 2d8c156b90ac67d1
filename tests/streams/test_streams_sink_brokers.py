"""Sinks to Kafka, NATS JetStream and MQTT: items finished through the store's commit are
published by the outbox relay (as `conveyor up` runs it) and read back from the real broker, one
message per item with its status and the item id as key and header. Kafka is a tansu broker of
the test's own; NATS and MQTT are the brokers on loopback, on a stream or topic of the test's
own (the Redis and RabbitMQ sinks are in test_streams_sinks.py)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from conveyor.installation import Installation
from conveyor.streams.brokers import open_consumer
from conveyor.streams.relay import OutboxRelay
from conveyor.streams.sinks import SinkConfig, add_sink, get_sink
from support.brokers import HOST, OwnTansu, reachable, running
from support.sinks import finish_items, outbox, read_everything
from support.streams import wait_for

ITEMS = 200
KAFKA_OPTIONS = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}  # tansu joins


def require_shared(port: int, name: str) -> None:
    if not reachable(port):
        pytest.fail(f"{name} is not reachable on {HOST}:{port}")


@pytest.fixture
def kafka_topic(tmp_path: Path) -> Iterator[str]:
    with running(OwnTansu(tmp_path / "tansu")) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for future in admin.create_topics([NewTopic("results", num_partitions=2)]).values():
            future.result(10)
        yield f"kafka://{broker.bootstrap}/results"


async def delete_stream(name: str) -> None:
    client = await nats.connect(f"nats://{HOST}:4222")
    try:
        await client.jetstream().delete_stream(name)
    finally:
        await client.close()


@pytest.fixture
def nats_stream() -> Iterator[str]:
    require_shared(4222, "NATS")
    name = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    yield f"nats://{HOST}:4222/{name}?subject={name}.results"
    asyncio.run(delete_stream(name))


def publish_through_the_relay(installation: Installation, url: str, log: Path) -> set[str]:
    """A sink on ``url``, ITEMS finished items, and the relay run until the outbox is empty."""
    with installation.sessions.begin() as session:
        add_sink(session, SinkConfig("results", url, "single"))
    finished = finish_items(installation, ITEMS)
    stop = threading.Event()
    thread = OutboxRelay(installation, ["results"]).start(stop)
    try:
        wait_for(lambda: outbox(installation) == 0, 60, "the outbox published", log)
    finally:
        stop.set()
        thread.join(60)
    with installation.sessions() as session:
        assert get_sink(session, "results").published == ITEMS
    return finished


def assert_one_message_per_item(
    messages: list[tuple[str, dict[str, object]]], finished: set[str]
) -> None:
    assert Counter(item_id for item_id, _ in messages) == Counter(finished)
    statuses = Counter(str(body["status"]) for _, body in messages)
    assert statuses == {"succeeded": ITEMS * 9 // 10, "failed": ITEMS // 10}
    assert all(body["item_id"] == item_id for item_id, body in messages)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_kafka_sink_publishes_each_item_once(
    stream_installation: Installation, kafka_topic: str, tmp_path: Path
) -> None:
    finished = publish_through_the_relay(stream_installation, kafka_topic, tmp_path / "log")
    messages = read_everything(kafka_topic, KAFKA_OPTIONS, at_least=ITEMS)
    assert_one_message_per_item(messages, finished)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_nats_sink_publishes_each_item_once(
    stream_installation: Installation, nats_stream: str, tmp_path: Path
) -> None:
    finished = publish_through_the_relay(stream_installation, nats_stream, tmp_path / "log")
    messages = read_everything(nats_stream, at_least=ITEMS)
    assert_one_message_per_item(messages, finished)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_mqtt_sink_publishes_each_item_once(
    stream_installation: Installation, tmp_path: Path
) -> None:
    require_shared(1883, "Mosquitto")
    topic = f"conveyor-test/{uuid.uuid4().hex[:12]}/results"
    url = f"mqtt://{HOST}:1883/{topic}"
    # MQTT keeps no log: the reader's session must exist before the relay publishes. It
    # expires a minute after the test, so the shared broker keeps nothing.
    reader = f"{url}?client_id=reader-{uuid.uuid4().hex[:12]}"
    options = {"session_expiry_seconds": "60"}
    open_consumer(reader, "test-reader", "reader", options).close()
    finished = publish_through_the_relay(stream_installation, url, tmp_path / "log")
    messages = read_everything(reader, options, at_least=ITEMS)
    assert_one_message_per_item(messages, finished)
