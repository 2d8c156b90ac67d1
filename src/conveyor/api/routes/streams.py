"""/api/v1/streams: broker sources whose messages become items (docs/streams.md).

Anyone signed in sees the sources and sinks (URLs without passwords, option names without
values), their counts and dead letters; only admins add or remove one, since each carries broker
credentials and a source feeds a pipeline without further review. Operators may pause (disable)
and resume a source."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from conveyor.api.errors import error_responses
from conveyor.api.security import admin, operator, viewer
from conveyor.api.timestamps import UtcDatetime
from conveyor.auth.service import Principal
from conveyor.errors import InputRejectedError
from conveyor.streams import sinks as sink_logic
from conveyor.streams import sources as logic
from conveyor.streams.tables import StreamSource

router = APIRouter(prefix="/streams", tags=["streams"])
SourceName = Annotated[str, PathParam(min_length=1, max_length=100, description="Source name")]
SinkName = Annotated[str, PathParam(min_length=1, max_length=100, description="Sink name")]
NOT_FOUND = error_responses(404)


class SourceOut(BaseModel):
    name: str
    url: str = Field(description="the broker URL without its password")
    pipeline: str
    model: str | None = Field(description="set: messages become this model's training rows")
    group: str
    options: list[str] = Field(description="names of the broker options set (values hidden)")
    has_schema: bool
    enabled: bool
    max_queued: int
    created_at: UtcDatetime
    items: int = Field(description="items made from this source's messages")
    rows: int = Field(description="training rows made from this source's messages")
    dead_letters: int
    messages_last_minute: int
    lag: int | None = Field(description="messages not yet acknowledged, as last reported")
    lag_at: UtcDatetime | None = Field(description="when a consumer last reported the lag")


class SourceList(BaseModel):
    sources: list[SourceOut]


class NewSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=2000)
    pipeline: str | None = Field(None, min_length=1, max_length=100)
    model: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="instead of pipeline: messages become this model's training rows",
    )
    group: str | None = Field(None, max_length=200, description="default conveyor-NAME")
    max_queued: int = Field(logic.DEFAULT_MAX_QUEUED, ge=1, le=10_000_000)
    options: dict[
        Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=10_000)]
    ] = Field(default_factory=dict, max_length=50)
    record_schema: dict[str, Any] | None = Field(None, description="JSON Schema of records")
    enabled: bool = True


class DeadLetterOut(BaseModel):
    identity: str
    reason: str
    payload: str = Field(description="the message as text (undecodable bytes replaced)")
    received_at: UtcDatetime


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetterOut]


class SinkOut(BaseModel):
    name: str
    url: str = Field(description="the broker URL without its password")
    kind: str = Field(description="what is published: items, model_events, predictions, alerts")
    pipeline: str = Field(description="the pipeline, or the model, endpoint or alert ('*': all)")
    statuses: list[str] = Field(description="final statuses whose items are published")
    options: list[str] = Field(description="names of the broker options set (values hidden)")
    created_at: UtcDatetime
    published: int = Field(description="messages the broker confirmed")
    published_at: UtcDatetime | None
    outbox: int = Field(description="messages waiting to be published")
    last_error: str | None = Field(description="the relay's last failure, cleared by a publish")
    relay: str | None = Field(description="the relay process holding the sink")


class SinkList(BaseModel):
    sinks: list[SinkOut]


class NewSink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=2000)
    kind: Literal["items", "model_events", "predictions", "alerts"] = "items"
    pipeline: str = Field(
        min_length=1,
        max_length=100,
        description="the pipeline, or the model, endpoint or alert ('*': all)",
    )
    statuses: list[str] = Field(
        default_factory=lambda: list(sink_logic.PUBLISHED_STATUSES), min_length=1, max_length=2
    )
    options: dict[
        Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=10_000)]
    ] = Field(default_factory=dict, max_length=50)


def _out(session: Any, source: StreamSource) -> SourceOut:
    counts = logic.source_counts(session, source)
    return SourceOut(**logic.public_view(source), **counts.__dict__)


@router.get("", response_model=SourceList)
def list_sources(request: Request, _: Principal = viewer) -> SourceList:
    """Every source with its items, messages in the last minute, lag and dead letters."""
    with request.app.state.installation.read_sessions() as session:
        return SourceList(sources=[_out(session, s) for s in logic.list_sources(session)])


@router.post("", response_model=SourceOut, status_code=201, responses=error_responses(404, 409))
def add_source(body: NewSource, request: Request, _: Principal = admin) -> SourceOut:
    """Add a source; running consumers (`conveyor up`, `streams run`) pick it up within
    seconds."""
    installation = request.app.state.installation
    target, model = logic.source_target(installation.registry, body.pipeline, body.model)
    if body.record_schema is not None:
        _check_schema(body.record_schema)
    config = logic.SourceConfig(
        name=body.name,
        url=body.url,
        pipeline=target,
        model=model,
        group=body.group or f"conveyor-{body.name}",
        options=body.options,
        max_queued=body.max_queued,
        record_schema=body.record_schema,
        enabled=body.enabled,
    )
    with installation.sessions.begin() as session:
        logic.add_source(session, config)
    with installation.read_sessions() as session:
        return _out(session, logic.get_source(session, body.name))


def _check_schema(schema: dict[str, Any]) -> None:
    from conveyor.streams.messages import schema_check

    try:
        schema_check(schema)
    except Exception as error:  # jsonschema's SchemaError
        raise InputRejectedError(f"record_schema is not a valid JSON Schema: {error}") from error


def _sink_out(session: Any, sink: Any) -> SinkOut:
    return SinkOut(
        **sink_logic.public_view(sink), outbox=sink_logic.outbox_depth(session, sink.name)
    )


@router.get("/sinks", response_model=SinkList)
def list_sinks(request: Request, _: Principal = viewer) -> SinkList:
    """Every sink with the messages it published and those waiting in its outbox."""
    with request.app.state.installation.read_sessions() as session:
        return SinkList(sinks=[_sink_out(session, s) for s in sink_logic.list_sinks(session)])


@router.post("/sinks", response_model=SinkOut, status_code=201, responses=error_responses(404, 409))
def add_sink(body: NewSink, request: Request, _: Principal = admin) -> SinkOut:
    """Add a sink: the pipeline's items that end from now on are published by the relay."""
    installation = request.app.state.installation
    statuses = body.statuses
    if body.kind == sink_logic.ITEMS:
        installation.registry.get(body.pipeline)
    else:
        statuses = [body.kind]
    config = sink_logic.SinkConfig(body.name, body.url, body.pipeline, body.options, statuses)
    with installation.sessions.begin() as session:
        sink_logic.add_sink(session, config)
    with installation.read_sessions() as session:
        return _sink_out(session, sink_logic.get_sink(session, body.name))


@router.delete("/sinks/{name}", status_code=204, responses=NOT_FOUND)
def remove_sink(name: SinkName, request: Request, _: Principal = admin) -> None:
    """Remove a sink and the messages it has not published yet."""
    with request.app.state.installation.sessions.begin() as session:
        sink_logic.remove_sink(session, name)


@router.get("/{name}", response_model=SourceOut, responses=NOT_FOUND)
def get_source(name: SourceName, request: Request, _: Principal = viewer) -> SourceOut:
    with request.app.state.installation.read_sessions() as session:
        return _out(session, logic.get_source(session, name))


@router.delete("/{name}", status_code=204, responses=NOT_FOUND)
def remove_source(name: SourceName, request: Request, _: Principal = admin) -> None:
    """Remove a source; its items stay, its dead letters and message identities go."""
    with request.app.state.installation.sessions.begin() as session:
        logic.remove_source(session, name)


@router.post("/{name}/enable", response_model=SourceOut, responses=NOT_FOUND)
def enable_source(name: SourceName, request: Request, _: Principal = operator) -> SourceOut:
    """Consume the source again; running consumers start within 10 s."""
    return _set_enabled(request, name, True)


@router.post("/{name}/disable", response_model=SourceOut, responses=NOT_FOUND)
def disable_source(name: SourceName, request: Request, _: Principal = operator) -> SourceOut:
    """Stop consuming the source (messages wait in the broker); consumers stop within 10 s."""
    return _set_enabled(request, name, False)


def _set_enabled(request: Request, name: str, enabled: bool) -> SourceOut:
    installation = request.app.state.installation
    with installation.sessions.begin() as session:
        logic.set_enabled(session, name, enabled)
    with installation.read_sessions() as session:
        return _out(session, logic.get_source(session, name))


@router.get("/{name}/dead-letters", response_model=DeadLetterList, responses=NOT_FOUND)
def dead_letters(
    name: SourceName,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    _: Principal = viewer,
) -> DeadLetterList:
    """The source's newest dead letters first, with the reason each one was not an item."""
    with request.app.state.installation.read_sessions() as session:
        logic.get_source(session, name)
        letters = logic.dead_letters(session, name, limit)
        return DeadLetterList(
            dead_letters=[
                DeadLetterOut(
                    identity=letter.identity,
                    reason=letter.reason,
                    payload=letter.payload.decode(errors="replace"),
                    received_at=letter.received_at,
                )
                for letter in letters
            ]
        )
