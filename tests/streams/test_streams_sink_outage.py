"""A sink's broker goes down in the middle of a run and comes back: items finish before, during
and after the outage, and the broker ends with exactly one message per succeeded item. The
broker is a Redis of its own (append-only file, fsync always) SIGKILLed while the relay
(`conveyor streams run`) is publishing, so a publish whose reply was lost is repeated after the
restart, and ``dedupe_seconds`` must drop the repeat. On SQLite and PostgreSQL (the outbox's
ids and deletes are the store's). The shared Redis is never stopped. The other brokers' outage
tests are in test_streams_sink_outage_brokers.py (the run itself: support/sinks.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conveyor.installation import Installation
from support.brokers import OwnRedis, running
from support.sinks import publish_across_outage

COUNTS = (1500, 500, 500)  # items finished before, during and after the outage


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    with running(OwnRedis(tmp_path / "redis")) as server:
        yield server


def test_one_message_per_succeeded_item_across_a_broker_outage(
    stream_installation: Installation, own_redis: OwnRedis, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{own_redis.port}/results"
    options = {"dedupe_seconds": "3600"}
    outage = (own_redis.crash, own_redis.start)
    succeeded = publish_across_outage(
        stream_installation, url, options, outage, COUNTS, tmp_path / "relay.log"
    )
    entries = redis.Redis("127.0.0.1", own_redis.port).xrange("results")
    item_ids = Counter(fields[b"key"].decode() for _, fields in entries)
    assert set(item_ids) == succeeded  # none lost, none invented
    assert len(entries) == len(succeeded)  # and none twice
