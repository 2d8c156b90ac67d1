"""Pruning the message identities of the stream sources (``stream_messages``).

An identity is what turns a redelivered message into a no-op, so it may go only once the broker
will not deliver that message again. A broker redelivers a message the group has not
acknowledged; the consumer acknowledges right after the commit, so an identity whose message
may come back is one committed just before its consumer died. Such a message is delivered again
as soon as a consumer of the source runs (Redis reclaims it after ``claim_idle_seconds``, Kafka
re-reads from the committed offset after the rebalance, RabbitMQ requeues it when the
connection closes), before or among the newer messages that consumer takes. So an identity may
go when both hold:

- it is older than the retention (``stream_messages_days``), which also covers brokers that can
  be asked to re-read acknowledged messages (Kafka re-reads from the earliest offset once a
  group's offsets expired, by default after 7 days without a consumer; an operator may rewind a
  Redis group): keep it longer than the broker keeps messages that could be re-read;
- the source took messages at least ``REDELIVERY_MARGIN`` after it: consumers have run long
  enough since for any redelivery of it to have come back and been found a duplicate.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.retention.prune import delete_in_batches
from conveyor.streams.tables import StreamMessage, StreamSource

REDELIVERY_MARGIN = timedelta(hours=1)


def prunable_before(
    now: datetime, days: float | None, newest_taken_at: datetime | None
) -> datetime | None:
    """Identities of a source received before the answer may go (None: none may)."""
    if days is None or newest_taken_at is None:
        return None
    return min(now - timedelta(days=days), newest_taken_at - REDELIVERY_MARGIN)


def prune_identities(
    sessions: sessionmaker[Session], now: datetime, days: float | None, **batching: Any
) -> int:
    """Delete what :func:`prunable_before` allows, source by source; returns how many."""
    if days is None:
        return 0
    with sessions() as session:
        newest = {
            name: session.scalar(
                select(func.max(StreamMessage.received_at)).where(StreamMessage.source == name)
            )
            for name in session.scalars(select(StreamSource.name))
        }
    deleted = 0
    for source, newest_taken_at in newest.items():
        before = prunable_before(now, days, newest_taken_at)
        if before is None:
            continue
        conditions = [StreamMessage.source == source, StreamMessage.received_at < before]
        deleted += delete_in_batches(
            sessions, StreamMessage.identity, StreamMessage.received_at, conditions, **batching
        )
    return deleted
