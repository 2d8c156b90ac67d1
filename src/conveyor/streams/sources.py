"""Configured stream sources in the store: add, list with their counts, remove."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from conveyor.core.lifecycle import ItemStatus
from conveyor.errors import ConveyorError, InputRejectedError, InvalidStateError
from conveyor.pipeline.registry import PipelineRegistry
from conveyor.store.models import Item, utcnow
from conveyor.streams.brokers import check_url, redact
from conveyor.streams.tables import StreamDeadLetter, StreamMessage, StreamSource

DEFAULT_MAX_QUEUED = 10_000
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
RATE_WINDOW = timedelta(seconds=60)


class StreamSourceNotFoundError(ConveyorError):
    code = "not_found"
    http_status = 404


class StreamSourceExistsError(InvalidStateError):
    code = "already_exists"


@dataclass(frozen=True)
class SourceConfig:
    """What a consumer needs to know about its source (a plain copy of the row)."""

    name: str
    url: str
    pipeline: str
    group: str
    options: Mapping[str, str] = field(default_factory=dict)
    max_queued: int = DEFAULT_MAX_QUEUED
    record_schema: dict[str, Any] | None = None
    enabled: bool = True
    model: str | None = None  # set: messages become labelled rows of this model, not items


@dataclass(frozen=True)
class SourceCounts:
    items: int
    rows: int  # labelled rows made (a training source)
    dead_letters: int
    messages_last_minute: int
    lag: int | None
    lag_at: datetime | None


def source_target(
    registry: PipelineRegistry, pipeline: str | None, model: str | None
) -> tuple[str, str | None]:
    """(pipeline, model) of a new source: items of an ordinary pipeline, or labelled rows of a
    model that has a dataset schema. A clear error for anything else, before it is stored."""
    from conveyor.models.submission import training_pipeline
    from conveyor.models.training import refuse_training_records
    from conveyor.streams.row_intake import training_schema

    if (pipeline is None) == (model is None):
        raise InputRejectedError(
            "give the pipeline whose items the messages become, or the model whose training "
            "rows they are (--pipeline or --train; API: pipeline or model), not both"
        )
    if model is not None:
        training_schema(training_pipeline(registry, model))
        return model, model
    assert pipeline is not None
    refuse_training_records(registry.get(pipeline))  # an unknown pipeline fails here too
    return pipeline, None


def add_source(session: Session, config: SourceConfig) -> None:
    if not NAME_PATTERN.match(config.name) or config.name == "sinks":
        raise InputRejectedError(
            f"source name {config.name!r}: use letters, digits, '.', '_' and '-' (up to 100),"
            " other than 'sinks' (the API's /streams/sinks)"
        )
    if config.max_queued < 1:
        raise InputRejectedError("max_queued must be at least 1")
    check_url(config.url)
    if session.get(StreamSource, config.name) is not None:
        raise StreamSourceExistsError(
            f"a stream source named {config.name!r} exists; remove it first or pick another name"
        )
    session.add(
        StreamSource(
            name=config.name,
            url=config.url,
            pipeline=config.pipeline,
            consumer_group=config.group,
            options=dict(config.options),
            record_schema=config.record_schema,
            enabled=config.enabled,
            max_queued=config.max_queued,
            model=config.model,
        )
    )


def remove_source(session: Session, name: str) -> None:
    """Forget a source; its message identities and dead letters go with it."""
    get_source(session, name)
    session.execute(delete(StreamMessage).where(StreamMessage.source == name))
    session.execute(delete(StreamDeadLetter).where(StreamDeadLetter.source == name))
    session.execute(delete(StreamSource).where(StreamSource.name == name))


def set_enabled(session: Session, name: str, enabled: bool) -> None:
    """Start or stop consuming a source; running consumers notice within seconds."""
    get_source(session, name).enabled = enabled


def get_source(session: Session, name: str) -> StreamSource:
    source = session.get(StreamSource, name)
    if source is None:
        raise StreamSourceNotFoundError(
            f"no stream source named {name!r}; `conveyor streams list` shows them"
        )
    return source


def list_sources(session: Session, enabled_only: bool = False) -> list[StreamSource]:
    query = select(StreamSource).order_by(StreamSource.name)
    if enabled_only:
        query = query.where(StreamSource.enabled.is_(True))
    return list(session.scalars(query))


def config_of(source: StreamSource) -> SourceConfig:
    return SourceConfig(
        name=source.name,
        url=source.url,
        pipeline=source.pipeline,
        group=source.consumer_group,
        options=dict(source.options or {}),
        max_queued=source.max_queued,
        record_schema=source.record_schema,
        enabled=source.enabled,
        model=source.model,
    )


def public_view(source: StreamSource) -> dict[str, Any]:
    """The source as lists and the API show it: no password, option names but no values."""
    return {
        "name": source.name,
        "url": redact(source.url),
        "pipeline": source.pipeline,
        "model": source.model,
        "group": source.consumer_group,
        "options": sorted(source.options or {}),
        "has_schema": source.record_schema is not None,
        "enabled": source.enabled,
        "max_queued": source.max_queued,
        "created_at": source.created_at,
    }


def source_counts(session: Session, source: StreamSource) -> SourceCounts:
    taken = select(func.count()).where(StreamMessage.source == source.name)
    items = session.scalar(taken.where(StreamMessage.item_id.is_not(None))) or 0
    rows = session.scalar(taken.where(StreamMessage.row_id.is_not(None))) or 0
    recent = session.scalar(taken.where(StreamMessage.received_at >= utcnow() - RATE_WINDOW))
    dead = session.scalar(select(func.count()).where(StreamDeadLetter.source == source.name))
    return SourceCounts(items, rows, dead or 0, recent or 0, source.lag, source.lag_at)


def queued_items(session: Session, source: str, pipeline: str) -> int:
    """Items this source made that still wait for the controller (the backpressure bound).
    Starts from the pipeline's queued items (an index), not from every message taken."""
    count = session.scalar(
        select(func.count())
        .select_from(Item)
        .join(StreamMessage, StreamMessage.item_id == Item.id)
        .where(Item.pipeline == pipeline, Item.status == ItemStatus.QUEUED.value)
        .where(StreamMessage.source == source)
    )
    return count or 0


def record_lag(session: Session, source: str, lag: int | None) -> None:
    session.execute(
        update(StreamSource).where(StreamSource.name == source).values(lag=lag, lag_at=utcnow())
    )


def dead_letters(session: Session, source: str, limit: int = 100) -> list[StreamDeadLetter]:
    """The newest dead letters of a source first."""
    return list(
        session.scalars(
            select(StreamDeadLetter)
            .where(StreamDeadLetter.source == source)
            .order_by(StreamDeadLetter.id.desc())
            .limit(limit)
        )
    )
