"""/api/v1/endpoints: model serving. Predict (any accepted body format), the list of
endpoints, their routing (operators move traffic toward the champion; anything else is an
admin's: serving/routing_policy.py) and watch/click events. Routes a pipeline adds for its
models (a recommender's ``GET /recommend/{user}``) live in its package (api/plugins.py).

The predict route reads raw bytes and answers with orjson: no pydantic on the hot path.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from conveyor.api.errors import ApiError, error_responses
from conveyor.api.security import check_role, current_principal, operator, viewer
from conveyor.auth.roles import Role, allows
from conveyor.auth.service import Principal
from conveyor.serving.endpoints import (
    EndpointRecord,
    read_endpoint,
    read_endpoints,
    save_routing,
)
from conveyor.serving.experiments import arm_results
from conveyor.serving.fastpath import Handler, error_payload
from conveyor.serving.feedback import record_events
from conveyor.serving.inputs import BodyTooLargeError, InvalidInputError
from conveyor.serving.offload import PredictThreads
from conveyor.serving.routing import RoutingConfig, RoutingConfigError, parse_config
from conveyor.serving.routing_policy import role_for_routing_change
from conveyor.serving.service import (
    EndpointUnavailableError,
    ModelFailedError,
    ServingService,
    UnknownEndpointError,
)
from conveyor.serving.stats import endpoint_series
from conveyor.serving.tokens import TokenCache
from conveyor.store.models import utcnow

router = APIRouter(prefix="/endpoints", tags=["serving"])
EndpointName = Annotated[
    str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="Endpoint name")
]
_SERVICE_LOCK = threading.Lock()
JSON = "application/json"


def install(app: FastAPI) -> None:
    """Serving's per-app state, the predict fast path's handler (api/middleware.py installs
    the fast path), and closing the service (last log flush) on shutdown."""
    app.state.serving_tokens = TokenCache()
    app.state.predict_threads = PredictThreads()
    app.state.serving_fast_handler = _fast_handler(app)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            yield state
        service = getattr(app.state, "serving", None)
        if service is not None:
            await run_in_threadpool(service.close)

    app.router.lifespan_context = lifespan


def serving_of(app: FastAPI) -> ServingService:
    """The app's serving service, loaded (the first call waits for the first load)."""
    service = _service(app)
    service.start()
    return service


def _service(app: FastAPI) -> ServingService:
    service = getattr(app.state, "serving", None)
    if service is None:
        with _SERVICE_LOCK:
            service = getattr(app.state, "serving", None)
            if service is None:
                service = app.state.serving = ServingService(app.state.installation)
    return service


def _caller(request: Request) -> Principal:
    """The API's usual logins, with bearer tokens cached for a few seconds."""
    state = request.app.state
    authorization = request.headers.get("authorization")
    if state.auth_required and authorization:
        cache: TokenCache[Principal] = state.serving_tokens
        principal = cache.get(authorization)
        if principal is None:
            principal = current_principal(request)
            cache.put(authorization, principal)
    else:
        principal = current_principal(request)
    if not allows(principal.role, Role.VIEWER):
        raise ApiError(403, "forbidden", "this needs the viewer role")
    return principal


async def _answer(app: FastAPI, name: str, body: bytes, key: str | None) -> tuple[int, bytes]:
    """(status, JSON body) of a predict request: the predictions or the error."""
    service = _service(app)
    if not service.ready:  # the first request waits for the first load, off the event loop
        await run_in_threadpool(service.start)
    try:
        answer = await app.state.predict_threads.predict(service, name, body, key)
        return 200, answer.body
    except InvalidInputError as error:
        return 422, error_payload(error.code, str(error), error.details)
    except BodyTooLargeError as error:
        return 413, error_payload(error.code, str(error))
    except UnknownEndpointError as error:
        return 404, error_payload(error.code, str(error))
    except EndpointUnavailableError as error:
        return 409, error_payload(error.code, str(error))
    except ModelFailedError as error:
        return 500, error_payload(error.code, str(error))


async def predict_for_route(
    request: Request, name: str, body: bytes, key: str | None
) -> tuple[int, bytes]:
    """A predict request made by another route (a pipeline's own: api/plugins.py) for a
    caller with at least the viewer role: (status, JSON body)."""
    _caller(request)
    return await _answer(request.app, name, body, key)


def _fast_handler(app: FastAPI) -> Handler:
    async def handle(
        name: str, body: bytes, key: str | None, authorization: str | None
    ) -> tuple[int, bytes] | None:
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
    status, body = await _answer(request.app, name, await request.body(), key)
    return Response(body, status, media_type=JSON)


class ArmOut(BaseModel):
    name: str
    target: str | int
    weight: float
    version: int | None = Field(description="the version this process serves for the arm")


class EndpointOut(BaseModel):
    name: str
    model: str
    revision: int
    updated_by: str
    routing: dict[str, Any]
    arms: list[ArmOut]


class EndpointList(BaseModel):
    endpoints: list[EndpointOut]


def _endpoint_out(service: ServingService, record: Any) -> EndpointOut:
    deployment = service.reloader.deployments.get(record.name)
    versions = deployment.versions if deployment else {}
    arms = [
        ArmOut(
            name=a.name,
            target=a.target,
            weight=a.weight,
            version=versions[a.name].version if a.name in versions else None,
        )
        for a in record.config.arms
    ]
    return EndpointOut(
        name=record.name,
        model=record.config.model,
        revision=record.revision,
        updated_by=record.updated_by,
        routing=record.config.as_dict(),
        arms=arms,
    )


@router.get("", response_model=EndpointList)
def list_endpoints(request: Request, _: Principal = viewer) -> EndpointList:
    service = serving_of(request.app)
    with service.sessions() as session:
        records = read_endpoints(session)
    return EndpointList(endpoints=[_endpoint_out(service, r) for r in records.values()])


@router.get("/{name}/routing", response_model=EndpointOut, responses=error_responses(404))
def get_routing(name: EndpointName, request: Request, _: Principal = viewer) -> EndpointOut:
    service = serving_of(request.app)
    with service.sessions() as session:
        return _endpoint_out(service, read_endpoint(session, name))


@router.put("/{name}/routing", response_model=EndpointOut, responses=error_responses(404))
def put_routing(
    name: EndpointName,
    request: Request,
    config: Annotated[dict[str, Any], Body(description="the routing config (docs/serving.md)")],
    principal: Principal = operator,
) -> EndpointOut:
    """Replace the routing; every replica switches within a few seconds."""
    try:
        parsed = parse_config(config)
    except RoutingConfigError as error:
        raise ApiError(422, error.code, str(error)) from None
    service = serving_of(request.app)
    with service.sessions.begin() as session:
        _check_routing_role(principal, read_endpoints(session).get(name), parsed)
        save_routing(session, name, parsed, f"{principal.kind}:{principal.name}")
    with service.sessions() as session:
        return _endpoint_out(service, read_endpoint(session, name))


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


class QualityOut(BaseModel):
    version: int
    successes: int
    trials: int
    value: float | None
    low: float | None = Field(description="95% Wilson interval, lower bound")
    high: float | None = Field(description="95% Wilson interval, upper bound")


class EndpointQuality(BaseModel):
    endpoint: str
    metric: str = Field(description="accuracy (label feedback) or ctr (click-through)")
    since: datetime
    versions: list[QualityOut]


@router.get("/{name}/quality", response_model=EndpointQuality, responses=error_responses(404))
def get_quality(
    name: EndpointName,
    request: Request,
    hours: Annotated[float, Query(gt=0, le=24 * 90)] = 24.0,
    _: Principal = viewer,
) -> EndpointQuality:
    """Online quality per model version over the last ``hours``, from feedback."""
    service = serving_of(request.app)
    with service.sessions() as session:
        read_endpoint(session, name)
    since = utcnow() - timedelta(hours=hours)
    results = arm_results(service.quality(name, since))
    return EndpointQuality(
        endpoint=name,
        metric=service.quality_metric(name),
        since=since,
        versions=[QualityOut(**(vars(r) | {"version": int(r.arm)})) for r in results],
    )


class MinuteOut(BaseModel):
    minute: datetime
    version: int
    records: int
    errors: int
    error_rate: float
    p50_ms: float
    p99_ms: float


class EndpointStats(BaseModel):
    endpoint: str
    since: datetime
    minutes: list[MinuteOut]


@router.get("/{name}/stats", response_model=EndpointStats, responses=error_responses(404))
def get_stats(
    name: EndpointName,
    request: Request,
    minutes: Annotated[int, Query(gt=0, le=7 * 24 * 60)] = 60,
    _: Principal = viewer,
) -> EndpointStats:
    """Per minute and version: records answered, errors, p50 and p99 latency (from the log)."""
    service = serving_of(request.app)
    service.log.flush()
    since = utcnow() - timedelta(minutes=minutes)
    with service.sessions() as session:
        read_endpoint(session, name)
        series = endpoint_series(session, name, since)
    return EndpointStats(endpoint=name, since=since, minutes=[MinuteOut(**m) for m in series])
