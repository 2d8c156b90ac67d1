"""Exactly once into the training rows: heart rows published to a Redis stream become exactly
one labelled row each, and poison messages one dead letter each, while `conveyor streams run`
is SIGKILLed twice mid-stream (a killed consumer's pending entries are reclaimed by the next),
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import redis
from sqlalchemy import select

from conveyor.installation import Installation
from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_rows
from conveyor.store.models import LabelledRow
from conveyor.streams.brokers import open_producer
from conveyor.streams.sources import SourceConfig, add_source
from conveyor.streams.tables import StreamDeadLetter
from support.streams import consume_while_killed_twice

ROWS, POISON_EVERY = 600, 30
SOURCE = "heart-readings"


def _publish(url: str) -> tuple[list[list[str]], int]:
    """ROWS heart rows as JSON objects, a poison message after every POISON_EVERY of them."""
    rows = synthetic_rows(ROWS, seed=21, missing_rate=0)
    producer = open_producer(url, {})
    poison = 0
    try:
        for number, row in enumerate(rows):
            values = [float(cell) if "." in cell else int(cell) for cell in row]
            record = dict(zip(HEART_SCHEMA.names, values, strict=True)) | {"seq": number}
            producer.publish(json.dumps(record).encode())
            if number % POISON_EVERY == 0:
                producer.publish(json.dumps({"seq": number, "age": 50}).encode())
                poison += 1
    finally:
        producer.close()
    return rows, poison


def test_rows_are_taken_exactly_once_while_the_consumer_is_killed_twice(
    stream_installation: Installation,
    redis_stream: str,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    installation = stream_installation
    options = {"claim_idle_seconds": "1"}
    config = SourceConfig(SOURCE, redis_stream, "heart", "conveyor-heart", options, model="heart")
    with installation.sessions.begin() as session:
        add_source(session, config)
    rows, poison = _publish(redis_stream)
    key = redis_stream.rsplit("/", 1)[1]

    def drained() -> bool:
        return redis_client.xinfo_groups(key)[0]["pending"] == 0

    log = tmp_path / "streams-run.log"
    consume_while_killed_twice(installation, ROWS + poison, log, drained, name=SOURCE)

    with installation.sessions() as session:
        stored = list(session.scalars(select(LabelledRow)))
        reasons = list(session.scalars(select(StreamDeadLetter.reason)))
    by_seq = Counter(row.payload["seq"] for row in stored)
    assert sorted(by_seq) == list(range(ROWS)) and set(by_seq.values()) == {1}
    assert all(row.values == rows[row.payload["seq"]] for row in stored)
    assert Counter(reason.split(":")[0] for reason in reasons) == {"missing_column": poison}
