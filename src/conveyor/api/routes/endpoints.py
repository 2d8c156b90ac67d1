"""/api/v1/endpoints: model serving. Predict (any accepted body format), the list of
endpoints, their routing (operators move traffic toward the champion; anything else is an
admin's: serving/routing_policy.py) and watch/click events. Routes a pipeline adds for its
models (a recommender's ``GET /recommend/{user}``) live in its package (api/plugins.py).

The predict route reads raw bytes and answers with orjson: no pydantic on the hot path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError

from conveyor.api.errors import ApiError, error_responses
from conveyor.api.security import check_role, current_principal, operator, viewer
from conveyor.api.serving_views import (
    EndpointList,
    EndpointOut,
    EndpointQuality,
    EndpointStats,
    endpoint_quality,
    endpoint_routing,
    endpoint_stats,
    endpoints_out,
    stats_window,
)
from conveyor.auth.roles import Role, allows
from conveyor.auth.service import Principal
from conveyor.errors import ConveyorError
from conveyor.serving.endpoints import (
    EndpointRecord,
    read_endpoint,
    read_endpoints,
    save_routing,
)
from conveyor.serving.fastpath import Handler, error_payload
from conveyor.serving.feedback import record_events
from conveyor.serving.routing import RoutingConfig, parse_config
from conveyor.serving.routing_policy import role_for_routing_change
from conveyor.serving.service import ServingService
from conveyor.serving.tokens import TokenCache
from conveyor.store.availability import store_unavailable
from conveyor.store.models import utcnow

router = APIRouter(prefix="/endpoints", tags=["serving"])
EndpointName = Annotated[
    str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="Endpoint name")
]
JSON = "application/json"
StatsRange = Literal["1h", "3h", "24h", "7d", "30d"]  # conveyor.retention.series.RANGES


def serving_of(app: FastAPI) -> ServingService:
    """The app's serving service (built by create_app), loaded: the first call waits for the
    first load."""
    service: ServingService = app.state.serving
    service.start()
    return service


def _caller(request: Request) -> Principal:
    """The API's usual logins, with bearer tokens cached for a few seconds."""
    state = request.app.state
    authorization = request.headers.get("authorization")
    if state.auth_required and authorization:
        cache: TokenCache[Principal] = state.serving_tokens
        principal = cache.get(authorization)
        if principal is None:
            principal = _verified(request, cache, authorization)
    else:
        principal = current_principal(request)
    if not allows(principal.role, Role.VIEWER):
        raise ApiError(403, "forbidden", "this needs the viewer role")
    return principal


def _verified(request: Request, cache: TokenCache[Principal], authorization: str) -> Principal:
    """Verify the token in the store and cache it; while the store cannot be reached, the
    token's last verification stands (serving keeps answering through a store outage)."""
    try:
        principal = current_principal(request)
    except DBAPIError as error:
        known = cache.last_known(authorization) if store_unavailable(error) else None
        if known is None:
            raise
        return known
    cache.put(authorization, principal)
    return principal


async def _answer(app: FastAPI, name: str, body: bytes, key: str | None) -> bytes:
    """The JSON body of a predict request's predictions; a ConveyorError says why not."""
    service: ServingService = app.state.serving
    if not service.ready:  # the first request waits for the first load, off the event loop
        await run_in_threadpool(service.start)
    answer = await app.state.predict_threads.predict(service, name, body, key)
    return answer.body


async def predict_for_route(
    request: Request, name: str, body: bytes, key: str | None
) -> tuple[int, bytes]:
    """A predict request made by another route (a pipeline's own: api/plugins.py) for a
    caller with at least the viewer role: (status, JSON body)."""
    _caller(request)
    try:
        return 200, await _answer(request.app, name, body, key)
    except ConveyorError as error:
        return error.http_status, error_payload(error)


def fast_handler(app: FastAPI) -> Handler:
    """The predict fast path's handler for ``app`` (api/middleware.py installs the path)."""

    async def handle(
        name: str, body: bytes, key: str | None, authorization: str | None
    ) -> bytes | None:
        state = app.state
        if state.auth_required and (
            authorization is None or state.serving_tokens.get(authorization) is None
        ):
            return None  # the ordinary route verifies (and caches) or refuses
        return await _answer(app, name, body, key)

    return handle


@router.post(
    "/{name}/predict",
    responses=error_responses(404, 409, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"type": ["object", "array"]}}},
            "description": "one record (a flat object, any key order), a list of records, or "
            "an MLflow scoring body: dataframe_records, dataframe_split, instances, inputs",
        }
    },
)
async def predict(name: EndpointName, request: Request) -> Response:
    """Predictions with the model name, version, arm and a prediction id per record. The
    request key (sticky A/B assignment) is the ``X-Request-Key`` header, ``?key=``, or the
    endpoint's ``key_field`` in the first record."""
    _caller(request)
    key = request.headers.get("x-request-key") or request.query_params.get("key")
    return Response(await _answer(request.app, name, await request.body(), key), media_type=JSON)


@router.get("", response_model=EndpointList)
def list_endpoints(request: Request, _: Principal = viewer) -> EndpointList:
    return EndpointList(endpoints=endpoints_out(serving_of(request.app)))


@router.get("/{name}/routing", response_model=EndpointOut, responses=error_responses(404))
def get_routing(name: EndpointName, request: Request, _: Principal = viewer) -> EndpointOut:
    return endpoint_routing(serving_of(request.app), name)


@router.put("/{name}/routing", response_model=EndpointOut, responses=error_responses(404))
def put_routing(
    name: EndpointName,
    request: Request,
    config: Annotated[dict[str, Any], Body(description="the routing config (docs/serving.md)")],
    principal: Principal = operator,
) -> EndpointOut:
    """Replace the routing; every replica switches within a few seconds."""
    parsed = parse_config(config)
    service = serving_of(request.app)
    with service.sessions.begin() as session:
        _check_routing_role(principal, read_endpoints(session).get(name), parsed)
        save_routing(session, name, parsed, f"{principal.kind}:{principal.name}")
    return endpoint_routing(service, name)


def _check_routing_role(
    principal: Principal, current: EndpointRecord | None, new: RoutingConfig
) -> None:
    """Operators may only move traffic toward the champion (docs/serving.md, roles)."""
    needed = role_for_routing_change(current.config if current else None, new)
    check_role(principal, needed.role, f"routing change ({'; '.join(needed.reasons)})")


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | int = Field(description="the request key the recommendation was made for")
    movie_id: int = Field(description="the movie watched or clicked")
    kind: str = Field("watch", pattern="^(watch|click)$")


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(max_length=10_000)


class EventsOut(BaseModel):
    recorded: int


@router.post("/{name}/events", response_model=EventsOut, status_code=202)
def post_events(
    name: EndpointName, events: EventsIn, request: Request, _: Principal = viewer
) -> EventsOut:
    """Watch or click events of users, joined to recommendations for click-through."""
    service = serving_of(request.app)
    with service.sessions.begin() as session:
        read_endpoint(session, name)
        count = record_events(
            session, name, [(str(e.user_id), e.movie_id, e.kind) for e in events.events]
        )
    return EventsOut(recorded=count)


@router.get("/{name}/quality", response_model=EndpointQuality, responses=error_responses(404))
def get_quality(
    name: EndpointName,
    request: Request,
    hours: Annotated[float, Query(gt=0, le=24 * 90)] = 24.0,
    _: Principal = viewer,
) -> EndpointQuality:
    """Online quality per model version over the last ``hours``, from feedback."""
    return endpoint_quality(serving_of(request.app), name, hours)


@router.get("/{name}/stats", response_model=EndpointStats, responses=error_responses(404))
def get_stats(
    name: EndpointName,
    request: Request,
    range: Annotated[
        StatsRange | None, Query(description="a named range ending now: 1h, 3h, 24h, 7d, 30d")
    ] = None,
    minutes: Annotated[int | None, Query(gt=0, le=90 * 24 * 60)] = None,
    since: Annotated[datetime | None, Query(description="start (ISO 8601; naive is UTC)")] = None,
    until: Annotated[datetime | None, Query(description="end (default: now)")] = None,
    _: Principal = viewer,
) -> EndpointStats:
    """Per minute (ranges up to 2 days) or hour and version: records answered, errors, p50 and
    p99 latency, from the prediction log and its roll-ups (``sources`` says which part came
    from where). ``since``/``until`` win over ``range``, which wins over ``minutes``; the
    default is the last hour."""
    window = stats_window(range, minutes, since, until, utcnow())
    return endpoint_stats(serving_of(request.app), name, *window)
