"""The RabbitMQ adapter against the RabbitMQ on loopback (guest/guest)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from conveyor.streams.brokers import open_producer
from support import broker_conformance as conformance

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
    finally:
        producer.close()
