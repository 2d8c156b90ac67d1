"""What the API and the web pages show of serving: endpoints with their routing, online
quality, per-minute stats and experiments, as response models built from the serving service
and its queries. The /api/v1/endpoints and /api/v1/experiments routes return these; the
serving pages (web/serving_pages.py) render them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from conveyor.api.errors import ApiError
from conveyor.api.schemas import ProportionOut
from conveyor.api.timestamps import UtcDatetime
from conveyor.retention.series import RANGES, chart_range
from conveyor.serving.endpoints import EndpointRecord, read_endpoint, read_endpoints
from conveyor.serving.experiments import ArmResult, ServingExperiment, arm_results
from conveyor.serving.service import ServingService
from conveyor.serving.stats import endpoint_chart
from conveyor.store.models import utcnow

MAX_STATS_SPAN = timedelta(days=731)  # the default hour roll-up retention, and a day


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


def endpoint_out(service: ServingService, record: EndpointRecord) -> EndpointOut:
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


class QualityOut(ProportionOut):
    version: int


class EndpointQuality(BaseModel):
    endpoint: str
    metric: str = Field(description="accuracy (label feedback) or ctr (click-through)")
    since: UtcDatetime
    versions: list[QualityOut]


class MinuteOut(BaseModel):
    minute: UtcDatetime
    version: int
    records: int
    errors: int
    error_rate: float
    p50_ms: float
    p99_ms: float


class SourceOut(BaseModel):
    source: str = Field(description="raw (the prediction log), minute or hour (its roll-ups)")
    since: UtcDatetime
    until: UtcDatetime


class EndpointStats(BaseModel):
    endpoint: str
    since: UtcDatetime
    until: UtcDatetime
    resolution: str = Field(description="minute or hour: one entry per period and version")
    sources: list[SourceOut] = Field(description="where each part of the range was read from")
    minutes: list[MinuteOut] = Field(
        description="per period (``minute``: its start, also for hours) and version"
    )


class ArmResultOut(ProportionOut):
    arm: str


class ExperimentOut(BaseModel):
    id: int
    endpoint: str
    name: str
    metric: str
    starts_at: UtcDatetime
    ends_at: UtcDatetime | None
    created_by: str
    results: list[ArmResultOut] | None = None


def experiment_out(
    experiment: ServingExperiment, results: list[ArmResult] | None = None
) -> ExperimentOut:
    return ExperimentOut(
        id=experiment.id,
        endpoint=experiment.endpoint,
        name=experiment.name,
        metric=experiment.metric,
        starts_at=experiment.starts_at,
        ends_at=experiment.ends_at,
        created_by=experiment.created_by,
        results=None if results is None else [ArmResultOut(**vars(r)) for r in results],
    )


def endpoints_out(service: ServingService) -> list[EndpointOut]:
    with service.sessions() as session:
        records = read_endpoints(session)
    return [endpoint_out(service, record) for record in records.values()]


def endpoint_routing(service: ServingService, name: str) -> EndpointOut:
    with service.sessions() as session:
        return endpoint_out(service, read_endpoint(session, name))


def endpoint_quality(service: ServingService, name: str, hours: float) -> EndpointQuality:
    """Online quality per model version over the last ``hours``, from feedback."""
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


def stats_window(
    range_name: str | None,
    minutes: int | None,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> tuple[datetime, datetime]:
    """The (since, until) of a stats request: explicit times first, then a named range
    (``RANGES``), then a number of minutes; the last hour by default. Naive UTC."""
    until = _naive_utc(until) if until else now
    if since is not None:
        start = _naive_utc(since)
    elif range_name is not None:
        start = until - RANGES[range_name]
    else:
        start = until - timedelta(minutes=minutes or 60)
    if not until - MAX_STATS_SPAN <= start < until:
        message = f"since ({start:%Y-%m-%d %H:%M}) must be before until ({until:%Y-%m-%d %H:%M})"
        raise ApiError(422, "invalid_range", f"{message} and at most 731 days before it")
    return start, until


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def endpoint_stats(
    service: ServingService, name: str, since: datetime, until: datetime
) -> EndpointStats:
    """Per period and version: records answered, errors, p50 and p99 latency, from the log
    and its roll-ups."""
    service.log.flush()
    with service.sessions() as session:
        read_endpoint(session, name)
        chart = endpoint_chart(session, name, chart_range(since, until))
    return EndpointStats(
        endpoint=name,
        since=chart.range.since,
        until=chart.range.until,
        resolution=chart.range.resolution,
        sources=[SourceOut(**vars(segment)) for segment in chart.segments],
        minutes=[MinuteOut(**entry) for entry in chart.entries],
    )
