"""Stream sink tests share these: items made final through the store's commit (which writes the
sinks' outbox rows, as the controller's does), the outbox's depth, and every message a sink put
on its topic as (item id, body)."""

from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import func, select

from conveyor.core.commits import CommitBatch, ItemChange
from conveyor.core.lifecycle import ItemStatus
from conveyor.installation import Installation
from conveyor.store.leases import LeaseHolder, claim_next_items
from conveyor.store.models import utcnow
from conveyor.store.outcomes import apply_batch
from conveyor.store.submissions import NewItem, insert_items
from conveyor.streams.brokers import open_consumer
from conveyor.streams.outbox import ITEM_HEADER, write_outbox
from conveyor.streams.tables import StreamOutboxRow

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


def read_everything(
    url: str, options: dict[str, str] | None = None, at_least: int = 0, timeout: float = 60
) -> list[tuple[str, dict[str, object]]]:
    """Every message on the sink's topic as (item id from the key, decoded body), read by a
    consumer group of its own until a fetch waits a second for nothing after ``at_least``
    messages (or ``timeout`` seconds: a Kafka group join takes a few)."""
    consumer = open_consumer(url, "test-reader", "reader", options or {})
    found: list[tuple[str, dict[str, object]]] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            batch = consumer.fetch(1000, 1.0)
            for message in batch:
                assert message.key is not None
                assert message.headers[ITEM_HEADER] == message.key.decode()
                found.append((message.key.decode(), json.loads(message.payload)))
            if batch:
                consumer.ack(batch)
            elif len(found) >= at_least or time.monotonic() > deadline:
                return found
    finally:
        consumer.close()
