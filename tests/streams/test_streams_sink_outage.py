"""A sink's broker goes down in the middle of a run and comes back: items finish before, during
and after the outage, and the broker ends with exactly one message per succeeded item. The
broker is a Redis of its own (append-only file, fsync always) SIGKILLed while the relay
(`conveyor streams run`) is publishing, so a publish whose reply was lost is repeated after the
restart, and ``dedupe_seconds`` must drop the repeat. On SQLite and PostgreSQL (the outbox's
ids and deletes are the store's). The shared Redis is never stopped."""

from __future__ import annotations

import re
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from conveyor.installation import Installation
from conveyor.store.models import Item
from conveyor.streams.sinks import SinkConfig, add_sink, get_sink
from support.brokers import OwnRedis, running
from support.sinks import finish_items, outbox
from support.streams import StreamsRun, wait_for
from support.up import free_port

BEFORE, DURING, AFTER = 1500, 500, 500  # items finished before, during and after the outage


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    with running(OwnRedis(tmp_path / "redis")) as server:
        yield server


def scraped_depth(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.search(r'^conveyor_stream_outbox_depth\{sink="results"\} (\S+)$', text, re.M)
    return float(found[1]) if found else -1.0


def sink_error(installation: Installation) -> str | None:
    with installation.sessions() as session:
        return get_sink(session, "results").last_error


def succeeded_ids(installation: Installation) -> set[str]:
    with installation.sessions() as session:
        return set(session.scalars(select(Item.id).where(Item.status == "succeeded")))


def test_one_message_per_succeeded_item_across_a_broker_outage(
    stream_installation: Installation, own_redis: OwnRedis, tmp_path: Path
) -> None:
    installation, log = stream_installation, tmp_path / "relay.log"
    url = f"redis://127.0.0.1:{own_redis.port}/results"
    with installation.sessions.begin() as session:
        options = {"dedupe_seconds": "3600"}
        add_sink(session, SinkConfig("results", url, "single", options, statuses=["succeeded"]))
    finish_items(installation, BEFORE)
    waiting = outbox(installation)
    metrics_port = free_port()
    relay = StreamsRun(
        installation, "results", log, "--sink-lease", "2", "--metrics-port", str(metrics_port)
    )

    # The broker dies while the relay publishes: part of the outbox is out, part is not.
    wait_for(lambda: outbox(installation) <= waiting * 2 // 3, 120, "publishing", log)
    own_redis.crash()
    assert outbox(installation) > 0, "everything was published before the outage"
    finish_items(installation, DURING)  # the outbox grows; the relay fails and retries
    wait_for(lambda: sink_error(installation) is not None, 60, "the relay's error", log)
    stuck = outbox(installation)
    assert stuck >= DURING * 9 // 10
    # The depth gauge follows the outbox while the broker is out (read after each failure).
    depth = lambda: scraped_depth(metrics_port) >= stuck  # noqa: E731
    wait_for(depth, 60, "the outbox depth on /metrics", log)

    own_redis.start()
    finish_items(installation, AFTER)
    wait_for(lambda: outbox(installation) == 0, 120, "the outbox published", log)
    relay.process.terminate()
    assert relay.process.wait(timeout=60) == 0, log.read_text(errors="replace")

    entries = redis.Redis("127.0.0.1", own_redis.port).xrange("results")
    item_ids = Counter(fields[b"key"].decode() for _, fields in entries)
    succeeded = succeeded_ids(installation)
    assert len(succeeded) == (BEFORE + DURING + AFTER) * 9 // 10
    assert set(item_ids) == succeeded  # none lost, none invented
    assert len(entries) == len(succeeded)  # and none twice
    with installation.sessions() as session:
        sink = get_sink(session, "results")
        assert (sink.published, sink.last_error) == (len(succeeded), None)
