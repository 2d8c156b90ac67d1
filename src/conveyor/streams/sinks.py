"""Configured stream sinks in the store: add, list with their outbox depth, remove."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from conveyor.core.lifecycle import ItemStatus
from conveyor.errors import ConveyorError, InputRejectedError, InvalidStateError
from conveyor.streams.brokers import check_url, redact
from conveyor.streams.event_sinks import ALERTS, MODEL_EVENTS, PREDICTIONS
from conveyor.streams.outbox import ITEM_HEADER
from conveyor.streams.sources import NAME_PATTERN
from conveyor.streams.tables import StreamOutboxRow, StreamSink

PUBLISHED_STATUSES = (ItemStatus.SUCCEEDED.value, ItemStatus.FAILED.value)
ITEMS = "items"
SINK_KINDS = (ITEMS, MODEL_EVENTS, PREDICTIONS, ALERTS)
KEY_HEADERS = {
    ITEMS: ITEM_HEADER,
    MODEL_EVENTS: "conveyor-event-id",
    PREDICTIONS: "conveyor-message-id",  # a prediction's id, or a feedback's
    ALERTS: "conveyor-alert-event-id",
}


class StreamSinkNotFoundError(ConveyorError):
    code = "not_found"
    http_status = 404


class StreamSinkExistsError(InvalidStateError):
    code = "already_exists"


@dataclass(frozen=True)
class SinkConfig:
    name: str
    url: str
    pipeline: str
    options: Mapping[str, str] = field(default_factory=dict)
    statuses: Sequence[str] = PUBLISHED_STATUSES


def add_sink(session: Session, config: SinkConfig) -> None:
    if not NAME_PATTERN.match(config.name):
        raise InputRejectedError(
            f"sink name {config.name!r}: use letters, digits, '.', '_' and '-' (up to 100)"
        )
    unknown = sorted(set(config.statuses) - set(PUBLISHED_STATUSES))
    event_sink = len(config.statuses) == 1 and config.statuses[0] in SINK_KINDS[1:]
    if not event_sink and (unknown or not config.statuses):
        raise InputRejectedError(
            f"sink statuses {unknown or '(none)'}: choose from {', '.join(PUBLISHED_STATUSES)}"
        )
    check_url(config.url)
    if session.get(StreamSink, config.name) is not None:
        raise StreamSinkExistsError(
            f"a stream sink named {config.name!r} exists; remove it first or pick another name"
        )
    session.add(
        StreamSink(
            name=config.name,
            url=config.url,
            pipeline=config.pipeline,
            options=dict(config.options),
            statuses=sorted(set(config.statuses)),
            published=0,
        )
    )


def get_sink(session: Session, name: str) -> StreamSink:
    sink = session.get(StreamSink, name)
    if sink is None:
        raise StreamSinkNotFoundError(
            f"no stream sink named {name!r}; `conveyor streams sinks` lists them"
        )
    return sink


def remove_sink(session: Session, name: str) -> int:
    """Forget a sink and the messages it had not published yet; returns how many."""
    get_sink(session, name)
    dropped = session.execute(delete(StreamOutboxRow).where(StreamOutboxRow.sink == name))
    session.execute(delete(StreamSink).where(StreamSink.name == name))
    return int(getattr(dropped, "rowcount", 0) or 0)


def list_sinks(session: Session) -> list[StreamSink]:
    return list(session.scalars(select(StreamSink).order_by(StreamSink.name)))


def outbox_depth(session: Session, name: str) -> int:
    """Messages of the sink waiting to be published."""
    query = select(func.count()).select_from(StreamOutboxRow).where(StreamOutboxRow.sink == name)
    return session.scalar(query) or 0


def sink_kind(statuses: Sequence[str]) -> str:
    """What a sink publishes: items' results, model events, prediction-log rows or alerts."""
    return next((kind for kind in SINK_KINDS[1:] if kind in statuses), ITEMS)


def key_header(statuses: Sequence[str]) -> str:
    """The header that carries a message's key, named after what the key identifies."""
    return KEY_HEADERS[sink_kind(statuses)]


def public_view(sink: StreamSink) -> dict[str, Any]:
    """The sink as lists and the API show it: no password, option names but no values."""
    return {
        "name": sink.name,
        "url": redact(sink.url),
        "kind": sink_kind(sink.statuses or ()),
        "pipeline": sink.pipeline,
        "statuses": list(sink.statuses or ()),
        "options": sorted(sink.options or {}),
        "created_at": sink.created_at,
        "published": sink.published,
        "published_at": sink.published_at,
        "last_error": sink.last_error,
        "relay": sink.relay_owner,
    }
