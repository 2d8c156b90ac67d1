"""Stream sink tests share these: items made final through the store's commit (which writes the
sinks' outbox rows, as the controller's does), the outbox's depth, every message a sink put
on its topic as (item id, body), and a sink's run across a broker outage (each broker's test
then reads what arrived)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import func, select

from conveyor.core.commits import CommitBatch, ItemChange
from conveyor.core.lifecycle import ItemStatus
from conveyor.installation import Installation
from conveyor.store.leases import LeaseHolder, claim_next_items
from conveyor.store.models import Item, utcnow
from conveyor.store.outcomes import apply_batch
from conveyor.store.submissions import NewItem, insert_items
from conveyor.streams.brokers import open_consumer
from conveyor.streams.brokers.base import Message
from conveyor.streams.outbox import ITEM_HEADER, write_outbox
from conveyor.streams.sinks import SinkConfig, add_sink, get_sink
from conveyor.streams.tables import StreamOutboxRow
from support.streams import StreamsRun, wait_for
from support.up import free_port

HOLDER = LeaseHolder("test-controller", lease_seconds=300)


def finish_items(installation: Installation, count: int, pipeline: str = "single") -> set[str]:
    """``count`` items made final through the store's commit (every tenth failed), 500 per
    transaction as a controller would; returns their ids."""
    finished: set[str] = set()
    for start in range(0, count, 500):
        size = min(500, count - start)
        news = [
            NewItem(pipeline, "1", "record", uuid.uuid4().hex * 2, f"work/{uuid.uuid4().hex}")
            for _ in range(size)
        ]
        with installation.sessions.begin() as session:
            insert_items(session, news)
            claims = claim_next_items(session, HOLDER, size, utcnow())
            changes = [
                ItemChange(
                    claim.id,
                    ItemStatus.FAILED if n % 10 == 0 else ItemStatus.SUCCEEDED,
                    error="step failed" if n % 10 == 0 else None,
                    result=None if n % 10 == 0 else {"n": n},
                    pipeline=pipeline,
                    pipeline_version="1",
                )
                for n, claim in enumerate(claims, start)
            ]
            held = {claim.id: claim.generation for claim in claims}
            apply_batch(
                session, HOLDER, CommitBatch(changes=changes), held, utcnow(), [write_outbox]
            )
        finished |= {claim.id for claim in claims}
    return finished


def outbox(installation: Installation) -> int:
    """Messages waiting in the outbox, of every sink."""
    with installation.sessions() as session:
        return session.scalar(select(func.count()).select_from(StreamOutboxRow)) or 0


def read_messages(
    url: str,
    options: Mapping[str, str] | None = None,
    at_least: int = 0,
    timeout: float = 60,
    group: str = "test-reader",
    wait: float = 1.0,
) -> list[Message]:
    """Every message on the sink's topic, read (and acknowledged) by the consumer ``group`` until
    a fetch waits ``wait`` seconds for nothing after ``at_least`` messages (or ``timeout``
    seconds: a Kafka group join takes a few)."""
    consumer = open_consumer(url, group, "reader", dict(options or {}))
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            batch = consumer.fetch(1000, wait)
            found.extend(batch)
            if batch:
                consumer.ack(batch)
            elif len(found) >= at_least or time.monotonic() > deadline:
                return found
    finally:
        consumer.close()


def read_everything(
    url: str, options: dict[str, str] | None = None, at_least: int = 0, timeout: float = 60
) -> list[tuple[str, dict[str, object]]]:
    """Every message on the sink's topic as (item id from the key, decoded body)."""
    found = []
    for message in read_messages(url, options, at_least, timeout):
        assert message.key is not None
        assert message.headers[ITEM_HEADER] == message.key.decode()
        found.append((message.key.decode(), json.loads(message.payload)))
    return found


def publish_across_outage(
    installation: Installation,
    url: str,
    options: Mapping[str, str],
    outage: tuple[Callable[[], None], Callable[[], None]],
    counts: tuple[int, int, int],
    log: Path,
    sink_batch: int = 500,
) -> set[str]:
    """A sink ``results`` (succeeded items only) on ``url``; ``counts`` items finish before,
    during and after an outage: ``conveyor streams run results`` publishes, ``outage[0]`` takes
    the broker down once a batch is out and part of the outbox is not, ``outage[1]`` brings it
    back. Checks the relay's error and depth gauge during the outage and that the outbox ends
    empty with every message counted; returns the succeeded items' ids."""
    before, during, after = counts
    with installation.sessions.begin() as session:
        add_sink(session, SinkConfig("results", url, "single", dict(options), ["succeeded"]))
    finish_items(installation, before)
    waiting, metrics_port = outbox(installation), free_port()
    extra = ("--sink-lease", "2", "--sink-batch", str(sink_batch))
    relay = StreamsRun(installation, "results", log, *extra, "--metrics-port", str(metrics_port))
    try:
        # The broker dies while the relay publishes: part of the outbox is out, part is not.
        wait_for(lambda: outbox(installation) <= waiting - sink_batch, 120, "publishing", log)
        outage[0]()
        assert outbox(installation) > 0, "everything was published before the outage"
        finish_items(installation, during)  # the outbox grows; the relay fails and retries
        wait_for(lambda: sink_error(installation) is not None, 60, "the relay's error", log)
        stuck = outbox(installation)
        assert stuck >= during * 9 // 10
        # The depth gauge follows the outbox while the broker is out (read after each failure).
        depth = lambda: scraped_depth(metrics_port) >= stuck  # noqa: E731
        wait_for(depth, 60, "the outbox depth on /metrics", log)
        outage[1]()
        finish_items(installation, after)
        wait_for(lambda: outbox(installation) == 0, 180, "the outbox published", log)
    finally:
        relay.process.terminate()
    assert relay.process.wait(timeout=60) == 0, log.read_text(errors="replace")
    succeeded = succeeded_ids(installation)
    assert len(succeeded) == (before + during + after) * 9 // 10
    with installation.sessions() as session:
        sink = get_sink(session, "results")
        assert (sink.published, sink.last_error) == (len(succeeded), None)
    return succeeded


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
