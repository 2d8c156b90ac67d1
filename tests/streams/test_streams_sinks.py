"""Stream sinks: items made final by the store's commit get their outbox rows in that same commit,
and `conveyor streams run` publishes each to the broker with its item id, SIGKILLed while it
does. A kill between the broker's confirm and the outbox delete publishes up to a batch again:
Redis with ``dedupe_seconds`` drops those repeats (exactly one entry per item); RabbitMQ cannot,
so there the test checks that every item arrives, repeats are bounded and carry the item id."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
from sqlalchemy import select

from conveyor.installation import Installation
from conveyor.streams.brokers import open_producer
from conveyor.streams.brokers.base import Outgoing
from conveyor.streams.outbox import ITEM_HEADER
from conveyor.streams.sinks import SinkConfig, add_sink, get_sink
from conveyor.streams.tables import StreamOutboxRow
from support import broker_conformance as conformance
from support.sinks import finish_items, outbox, read_everything
from support.streams import StreamsRun, wait_for

ITEMS = int(os.environ.get("CONVEYOR_STREAMS_TEST_SINK_ITEMS", "600"))
RELAY_BATCH = 10  # --sink-batch: the most a kill can make the relay publish again
# Batches far smaller than the default (500): 60 transactions for 600 items, so that on an idle
# machine the relay is still publishing when the test, polling every 20 ms, kills it.
RELAY_OPTIONS = ("--sink-lease", "2", "--sink-batch", str(RELAY_BATCH))


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


def relay_while_killed(
    installation: Installation,
    log: Path,
    kill_at: tuple[int, ...] = (ITEMS * 3 // 4, ITEMS // 2),
) -> None:
    """`conveyor streams run results` SIGKILLed once the outbox is down to each of
    ``kill_at`` (default: a quarter, then half published), then a last run until the outbox
    is empty."""
    for waiting in kill_at:
        run = StreamsRun(installation, "results", log, *RELAY_OPTIONS)
        wait_for(lambda at=waiting: outbox(installation) <= at, 120, "publishing", log)
        run.process.kill()
        run.process.wait()
        assert outbox(installation) > 0, "the outbox was empty before the kill"
    last = StreamsRun(installation, "results", log, *RELAY_OPTIONS)
    wait_for(lambda: outbox(installation) == 0, 120, "the outbox published", log)
    last.process.terminate()
    assert last.process.wait(timeout=60) == 0, log.read_text(errors="replace")


def check_each_item_arrived(
    installation: Installation, url: str, finished: set[str], repeats: int
) -> None:
    messages = read_everything(url)
    arrivals = Counter(item_id for item_id, _ in messages)
    assert set(arrivals) == finished  # none lost, none invented
    assert len(messages) - len(finished) <= repeats
    bodies = {item_id: body for item_id, body in messages}
    statuses = Counter(str(body["status"]) for body in bodies.values())
    assert statuses == {"failed": ITEMS // 10, "succeeded": ITEMS - ITEMS // 10}
    some = next(body for body in bodies.values() if body["status"] == "succeeded")
    assert some["links"] == {
        "item": f"/api/v1/items/{some['item_id']}",
        "result": f"/api/v1/items/{some['item_id']}/result",
    }
    with installation.sessions() as session:
        assert get_sink(session, "results").published == len(finished)


def test_finished_items_reach_redis_exactly_once_across_relay_kills(
    stream_installation: Installation, redis_stream: str, tmp_path: Path
) -> None:
    installation = stream_installation
    with installation.sessions.begin() as session:
        options = {"dedupe_seconds": "300"}  # the item id (key) is added once within 5 minutes
        add_sink(session, SinkConfig("results", redis_stream, "single", options))
    finished = finish_items(installation, ITEMS)
    assert outbox(installation) == ITEMS  # written with the final states, before any relay

    # Killed twice on SQLite, once on PostgreSQL (the file's time in the suite).
    on_sqlite = installation.settings.resolved_database_url.startswith("sqlite")
    kills = (ITEMS * 3 // 4, ITEMS // 2) if on_sqlite else (ITEMS // 2,)
    relay_while_killed(installation, tmp_path / "relay.log", kills)

    check_each_item_arrived(installation, redis_stream, finished, repeats=0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_finished_items_reach_rabbitmq_once_each_across_a_relay_kill(
    stream_installation: Installation, queue_url: str, tmp_path: Path
) -> None:
    installation = stream_installation
    with installation.sessions.begin() as session:
        add_sink(session, SinkConfig("results", queue_url, "single"))
    finished = finish_items(installation, ITEMS)

    relay_while_killed(installation, tmp_path / "relay.log", kill_at=(ITEMS // 2,))

    check_each_item_arrived(installation, queue_url, finished, repeats=RELAY_BATCH)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_the_sinks_pipeline_and_statuses_are_written(
    stream_installation: Installation, redis_stream: str
) -> None:
    installation = stream_installation
    with installation.sessions.begin() as session:
        add_sink(session, SinkConfig("good", redis_stream, "single", statuses=["succeeded"]))
        add_sink(session, SinkConfig("other", redis_stream, "another"))
    finish_items(installation, 50)
    with installation.sessions() as session:
        rows = session.execute(select(StreamOutboxRow.sink, StreamOutboxRow.payload)).all()
    assert Counter(sink for sink, _ in rows) == {"good": 45}
    assert {json.loads(payload)["status"] for _, payload in rows} == {"succeeded"}


def test_redis_adds_a_key_once_within_dedupe_seconds(redis_client: Any, redis_stream: str) -> None:
    """What makes the Redis sink exactly-once: the relay's repeat after a crash is dropped."""
    key = redis_stream.rsplit("/", 1)[1]
    producer = open_producer(redis_stream, {"dedupe_seconds": "60", "maxlen": "1000"})
    try:
        for _ in range(2):  # the second is the relay publishing again after a kill
            producer.publish(b'{"n": 1}', key=b"item-1", headers={ITEM_HEADER: "item-1"})
        producer.publish(b'{"n": 2}', key=b"item-2")
        producer.publish(b'{"n": 3}')  # no key: nothing to dedupe by
        producer.publish(b'{"n": 3}')
    finally:
        producer.close()
    entries = redis_client.xrange(key)
    assert [fields[b"payload"] for _, fields in entries] == [
        b'{"n": 1}',
        b'{"n": 2}',
        b'{"n": 3}',
        b'{"n": 3}',
    ]
    assert entries[0][1][b"key"] == b"item-1" and entries[0][1][ITEM_HEADER.encode()] == b"item-1"
    redis_client.delete(*redis_client.keys(f"{{{key}}}:published:*"))


def test_a_redis_batch_arrives_in_order_and_dedupes_within_itself(
    redis_client: Any, redis_stream: str
) -> None:
    conformance.check_publish_batch_in_order(redis_stream, "g", {})
    key = redis_stream.rsplit("/", 1)[1]
    redis_client.delete(key)
    producer = open_producer(redis_stream, {"dedupe_seconds": "60"})
    try:
        repeated = [Outgoing(b'{"n": 1}', b"item-1"), Outgoing(b'{"n": 2}', b"item-2")]
        producer.publish_batch([*repeated, repeated[0]])
        producer.publish_batch(repeated)  # the relay's repeat of a batch after a crash
    finally:
        producer.close()
    assert [fields[b"key"] for _, fields in redis_client.xrange(key)] == [b"item-1", b"item-2"]
    redis_client.delete(*redis_client.keys(f"{{{key}}}:published:*"))
