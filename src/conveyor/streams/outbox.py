"""The transactional outbox of the stream sinks.

:func:`write_outbox` runs inside the commit that makes items final (a store hook the
installation gives the controller), so an item's result message exists exactly when its final
state does: never one without the other. The relay (:mod:`conveyor.streams.relay`) publishes
the rows in id order and deletes them once the broker confirmed; a crash in between publishes
them again, so every message carries its item id (key and header) for consumers to dedupe.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from conveyor.core.commits import ItemChange
from conveyor.streams.tables import StreamOutboxRow, StreamSink

MAX_RESULT_BYTES = 64 * 1024  # a message larger with its result leaves it out (links.result)
ITEM_HEADER = "conveyor-item-id"
OUTBOX_HEADER = "conveyor-outbox-id"


def write_outbox(session: Session, changes: Sequence[ItemChange], now: datetime) -> None:
    """One outbox row per sink of the item's pipeline that publishes its final status."""
    pipelines = {change.pipeline for change in changes}
    sinks = session.execute(
        select(StreamSink.name, StreamSink.pipeline, StreamSink.statuses).where(
            StreamSink.pipeline.in_(pipelines)
        )
    ).all()
    rows = [
        {
            "sink": sink,
            "item_id": change.item_id,
            "payload": result_message(change, now),
            "created_at": now,
        }
        for change in changes
        for sink, pipeline, statuses in sinks
        if change.pipeline == pipeline and change.status.value in (statuses or ())
    ]
    if rows:
        session.execute(insert(StreamOutboxRow), rows)


def result_message(change: ItemChange, finished_at: datetime) -> bytes:
    """The JSON message of a finished item: its status, result (or why it is left out), error
    and links to the item and its result in the API."""
    body: dict[str, Any] = {
        "item_id": change.item_id,
        "pipeline": change.pipeline,
        "pipeline_version": change.pipeline_version or None,
        "status": change.status.value,
        "finished_at": finished_at.isoformat() + "Z",
        "error": change.error,
        "links": {
            "item": f"/api/v1/items/{change.item_id}",
            "result": f"/api/v1/items/{change.item_id}/result",
        },
    }
    body["result"] = change.result
    message = json.dumps(body, default=str).encode()
    if len(message) > MAX_RESULT_BYTES:
        body["result"] = None
        body["result_omitted"] = f"{len(message)} bytes with it; fetch links.result"
        message = json.dumps(body).encode()
    return message


# -- the relay's side --------------------------------------------------------------------------


def claim_sink(session: Session, name: str, owner: str, now: datetime, lease: timedelta) -> bool:
    """Take or renew the sink's relay lease; False while another relay holds it."""
    taken = session.execute(
        update(StreamSink)
        .where(StreamSink.name == name)
        .where(
            or_(
                StreamSink.relay_owner.is_(None),
                StreamSink.relay_owner == owner,
                StreamSink.relay_lease_until < now,
            )
        )
        .values(relay_owner=owner, relay_lease_until=now + lease)
    )
    return bool(getattr(taken, "rowcount", 0))


def release_sink(session: Session, name: str, owner: str) -> None:
    session.execute(
        update(StreamSink)
        .where(StreamSink.name == name, StreamSink.relay_owner == owner)
        .values(relay_owner=None, relay_lease_until=None)
    )


def next_rows(session: Session, sink: str, limit: int) -> list[StreamOutboxRow]:
    """The sink's oldest waiting messages, in the order their items finished."""
    query = (
        select(StreamOutboxRow)
        .where(StreamOutboxRow.sink == sink)
        .order_by(StreamOutboxRow.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def confirm_published(session: Session, sink: str, ids: Sequence[int], now: datetime) -> None:
    """Delete the rows the broker confirmed and count them on the sink."""
    session.execute(delete(StreamOutboxRow).where(StreamOutboxRow.id.in_(list(ids))))
    session.execute(
        update(StreamSink)
        .where(StreamSink.name == sink)
        .values(
            published=StreamSink.published + len(ids),
            published_at=now,
            last_error=None,
        )
    )


def record_error(session: Session, sink: str, error: str) -> None:
    session.execute(update(StreamSink).where(StreamSink.name == sink).values(last_error=error))
