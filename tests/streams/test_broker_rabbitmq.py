"""The RabbitMQ adapter against the RabbitMQ on loopback (guest/guest): the shared conformance
checks, and a queue as a stream source end to end while the consumer is SIGKILLed twice. The
shared RabbitMQ is not restarted here: other tests use it; the same runs against a RabbitMQ
node of its own that is also SIGKILLed and restarted mid-stream (a node takes 10 to 40 s to
start here, twice; CONVEYOR_STREAMS_TEST_RABBITMQ_RESTART=0 skips it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pika
import pika.exceptions
import pytest

from conveyor.installation import Installation
from conveyor.streams.brokers import open_producer
from conveyor.streams.brokers.base import Outgoing
from support import broker_conformance as conformance
from support.brokers import OwnRabbit, running
from support.streams import (
    MESSAGES,
    add_test_source,
    assert_exactly_once,
    consume_while_killed_twice,
    publish_records_and_poison,
)

OPTIONS: dict[str, str] = {}


@pytest.fixture
def queue_url() -> Iterator[str]:
    name = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    try:
        connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    except pika.exceptions.AMQPConnectionError:
        if os.environ.get("CI"):
            pytest.fail("RabbitMQ is not reachable on 127.0.0.1:5672")
        pytest.skip("RabbitMQ is not reachable on loopback")
    yield f"amqp://guest:guest@127.0.0.1:5672/?queue={name}"
    connection.channel().queue_delete(name)
    connection.close()


def test_publish_then_fetch_all_with_unique_identities(queue_url: str) -> None:
    conformance.check_publish_fetch_unique(queue_url, "g", OPTIONS)


def test_a_batch_arrives_whole_and_in_order(queue_url: str) -> None:
    conformance.check_publish_batch_in_order(queue_url, "g", OPTIONS)


def test_unacked_messages_come_back_acked_ones_do_not(queue_url: str) -> None:
    conformance.check_unacked_redelivered_acked_not(queue_url, "g", OPTIONS)


def test_two_consumers_share_the_queue(queue_url: str) -> None:
    conformance.check_group_shares(queue_url, "g", OPTIONS)


def test_lag_falls_as_messages_are_acked(queue_url: str) -> None:
    conformance.check_lag_decreases(queue_url, "g", OPTIONS)


def test_publish_raises_when_the_broker_cannot_take_the_message(queue_url: str) -> None:
    producer = open_producer(queue_url, OPTIONS)
    name = queue_url.split("queue=")[1]
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    connection.channel().queue_delete(name)
    connection.close()
    try:
        with pytest.raises(pika.exceptions.UnroutableError):
            producer.publish(b'{"n": 1}')
        with pytest.raises(pika.exceptions.UnroutableError):
            producer.publish_batch([Outgoing(b'{"n": 2}'), Outgoing(b'{"n": 3}')])
    finally:
        producer.close()


def ready_in(queue_url: str) -> int:
    port = urlsplit(queue_url).port or 5672
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    try:
        declared = connection.channel().queue_declare(queue_url.split("queue=")[1], passive=True)
        return int(declared.method.message_count)
    finally:
        connection.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_messages_become_exactly_one_item_each_while_the_consumer_is_killed_twice(
    stream_installation: Installation, queue_url: str, tmp_path: Path
) -> None:
    add_test_source(stream_installation, queue_url)
    total = publish_records_and_poison(queue_url, MESSAGES)

    consume_while_killed_twice(
        stream_installation, total, tmp_path / "streams-run.log", lambda: ready_in(queue_url) == 0
    )

    assert_exactly_once(stream_installation, MESSAGES)
    assert ready_in(queue_url) == 0  # the last run acknowledged everything before it stopped


@pytest.fixture
def own_rabbit(tmp_path: Path) -> Iterator[OwnRabbit]:
    if os.environ.get("CONVEYOR_STREAMS_TEST_RABBITMQ_RESTART") == "0":
        pytest.skip("CONVEYOR_STREAMS_TEST_RABBITMQ_RESTART=0: no RabbitMQ of its own")
    with running(OwnRabbit(tmp_path / "rabbitmq")) as server:
        yield server


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_rabbitmq_restart_mid_stream_loses_and_duplicates_nothing(
    stream_installation: Installation, own_rabbit: OwnRabbit, tmp_path: Path
) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{own_rabbit.port}/?queue=readings"
    add_test_source(stream_installation, url)
    total = publish_records_and_poison(url, MESSAGES)

    consume_while_killed_twice(
        stream_installation,
        total,
        tmp_path / "streams-run.log",
        lambda: ready_in(url) == 0,
        own_rabbit.crash_and_restart,
    )

    assert_exactly_once(stream_installation, MESSAGES)
    assert ready_in(url) == 0
