"""The runner keeps a consumer per enabled source: sources added or removed while it runs are
started or stopped, and a source whose broker is down retries without stopping the others."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from conveyor.installation import Installation
from conveyor.store.models import Item
from conveyor.streams.brokers import open_producer
from conveyor.streams.consumer import ConsumerTuning
from conveyor.streams.metrics import StreamMetrics
from conveyor.streams.runner import StreamRunner
from conveyor.streams.sources import SourceConfig, add_source, remove_source


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _items(installation: Installation) -> int:
    with installation.sessions() as session:
        return session.scalar(select(func.count()).select_from(Item)) or 0


def test_sources_come_and_go_while_the_runner_runs(
    stream_installation: Installation, redis_stream: str
) -> None:
    installation = stream_installation
    runner = StreamRunner(
        installation, tuning=ConsumerTuning(fetch_timeout_seconds=0.1), refresh_seconds=0.1
    )
    stop = threading.Event()
    thread = runner.start(stop)
    try:
        with installation.sessions.begin() as session:
            add_source(session, SourceConfig("down", "redis://127.0.0.1:1/x", "single", "g"))
            add_source(session, SourceConfig("live", redis_stream, "single", "g"))
        producer = open_producer(redis_stream, {})
        for n in range(20):
            producer.publish(json.dumps({"n": n}).encode())
        producer.close()
        _wait_for(lambda: _items(installation) == 20, "the live source's items")
        down = runner.statuses()["down"]
        _wait_for(lambda: down.state == "error", "the unreachable broker's error")
        assert down.error and "Connection" in down.error

        with installation.sessions.begin() as session:
            remove_source(session, "live")
        _wait_for(lambda: "live" not in runner.statuses(), "the removed source to stop")
        assert runner.statuses()["down"].state == "error"  # still retrying
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()


def test_consumers_that_steal_each_others_messages_still_make_one_item_each(
    stream_installation: Installation, redis_stream: str
) -> None:
    """Two consumers of one group with claim_idle_seconds=0 reclaim every message the other
    holds, so both often take the same batch: the store's identities keep one item each."""
    installation = stream_installation
    options = {"claim_idle_seconds": "0"}
    with installation.sessions.begin() as session:
        add_source(session, SourceConfig("shared", redis_stream, "single", "g", options))
    producer = open_producer(redis_stream, {})
    for n in range(600):
        producer.publish(json.dumps({"n": n}).encode())
    producer.close()
    tuning = ConsumerTuning(batch_size=20, fetch_timeout_seconds=0.05)
    stop = threading.Event()
    runners = [
        StreamRunner(
            installation,
            tuning=tuning,
            consumer_name=name,
            metrics=StreamMetrics(CollectorRegistry()),
        )
        for name in ("one", "two")
    ]
    threads = [runner.start(stop) for runner in runners]
    try:
        _wait_for(lambda: _items(installation) >= 600, "600 items", timeout=120)
        time.sleep(1)  # room for a wrong 601st
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    with installation.sessions() as session:
        values = sorted(item.record["n"] for item in session.scalars(select(Item)))
    assert values == list(range(600))
    statuses = [runner.statuses()["shared"] for runner in runners]
    assert sum(status.items for status in statuses) == 600
    assert all(status.items > 0 for status in statuses)  # both took a share
    # Whether the two also took the same batch depends on timing (seen with none in a CI run),
    # so the duplicates they met are not asserted; when they meet one, the identity keeps it out.
