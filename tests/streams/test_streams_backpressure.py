"""Backpressure: a source stops taking messages while its queued items reach max_queued, and
takes more as the controller drains them; the rest waits in the broker, counted as lag."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry
from sqlalchemy import func, select, update

from conveyor.installation import Installation
from conveyor.store.models import Item
from conveyor.streams.brokers import open_consumer, open_producer
from conveyor.streams.consumer import ConsumerTuning, SourceConsumer
from conveyor.streams.intake import MessageIntake
from conveyor.streams.metrics import StreamMetrics
from conveyor.streams.sources import SourceConfig, add_source


def _items(installation: Installation) -> int:
    with installation.sessions() as session:
        return session.scalar(select(func.count()).select_from(Item)) or 0


def _poll_until_idle(consumer: SourceConsumer) -> None:
    for _ in range(100):
        if consumer.poll_once() == 0:
            return
    raise AssertionError("the consumer never stopped taking messages")


def test_consuming_pauses_at_max_queued_and_resumes_as_items_leave_the_queue(
    stream_installation: Installation, redis_stream: str
) -> None:
    installation = stream_installation
    config = SourceConfig("bounded", redis_stream, "single", "conveyor-bounded", max_queued=100)
    with installation.sessions.begin() as session:
        add_source(session, config)
    producer = open_producer(redis_stream, {})
    for n in range(300):
        producer.publish(json.dumps({"n": n}).encode())
    producer.close()
    registry = CollectorRegistry()
    broker = open_consumer(redis_stream, config.group, "only", {})
    consumer = SourceConsumer(
        config,
        installation.registry.get("single"),
        broker,
        MessageIntake(installation.sessions, installation.submitter),
        installation.sessions,
        StreamMetrics(registry),
        ConsumerTuning(batch_size=40, fetch_timeout_seconds=0.1, lag_interval_seconds=0),
    )

    _poll_until_idle(consumer)
    assert _items(installation) == 100
    assert consumer.status.state == "paused"
    assert broker.lag() == 200
    assert registry.get_sample_value("conveyor_stream_paused", {"source": "bounded"}) == 1

    with installation.sessions.begin() as session:  # the controller takes 60 of them
        taken = select(Item.id).where(Item.status == "queued").limit(60).scalar_subquery()
        session.execute(update(Item).where(Item.id.in_(taken)).values(status="running"))
    _poll_until_idle(consumer)
    broker.close()

    assert _items(installation) == 160
    assert consumer.status.lag == 140
    labels = {"source": "bounded", "outcome": "item"}
    assert registry.get_sample_value("conveyor_stream_messages_total", labels) == 160
    assert registry.get_sample_value("conveyor_stream_lag_messages", {"source": "bounded"}) == 140
