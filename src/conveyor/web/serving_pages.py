"""The serving pages: every endpoint with its routing, and one endpoint's charts (throughput,
error rate, latency percentiles, online quality per version) and experiments with per-arm
results and confidence intervals.

They read the app's serving service through the views the /api/v1/endpoints and
/api/v1/experiments routes return (api/serving_views.py); changing the routing or ending an
experiment calls those API routes from the browser.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.api.serving_views import (
    ExperimentOut,
    endpoint_quality,
    endpoint_routing,
    endpoint_stats,
    endpoints_out,
    experiment_out,
)
from conveyor.auth.service import Principal
from conveyor.errors import ConveyorError
from conveyor.retention.series import RANGES
from conveyor.serving import experiments as logic
from conveyor.serving.service import ServingService
from conveyor.store.models import utcnow
from conveyor.web.routes import Viewer, _page

router = APIRouter(include_in_schema=False)
ENDPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
CHART_RANGE = "3h"  # the default of the range buttons (RANGES)
QUALITY_HOURS = 24
EXPERIMENTS_SHOWN = 10


@router.get("/endpoints", name="web_endpoints")
def endpoints_page(request: Request, principal: Principal = Viewer) -> Response:
    listed = endpoints_out(_serving(request))
    return _page(request, "endpoints.html", principal, endpoints=listed)


@router.get("/endpoints/{name}", name="web_endpoint")
def endpoint_page(
    request: Request, name: str, range: str = CHART_RANGE, principal: Principal = Viewer
) -> Response:
    if not ENDPOINT_NAME.fullmatch(name):
        return _page(
            request, "missing.html", principal, status_code=404, message="no such endpoint"
        )
    service = _serving(request)
    try:
        endpoint = endpoint_routing(service, name)
    except ConveyorError as error:
        return _page(request, "missing.html", principal, status_code=404, message=str(error))
    chosen = range if range in RANGES else CHART_RANGE
    now = utcnow()
    stats = endpoint_stats(service, name, now - RANGES[chosen], now)
    quality = endpoint_quality(service, name, QUALITY_HOURS)
    hourly = service.quality(name, utcnow() - timedelta(hours=QUALITY_HOURS), group="version_hour")
    return _page(
        request,
        "endpoint.html",
        principal,
        endpoint=endpoint,
        routing_json=json.dumps(endpoint.routing, indent=2),
        quality=quality,
        experiments=_experiments(service, name),
        chart=stats_chart(stats.minutes),
        chart_range=chosen,
        chart_ranges=list(RANGES),
        chart_resolution=stats.resolution,
        chart_sources=stats.sources,
        quality_chart=quality_chart(hourly),
    )


def _serving(request: Request) -> ServingService:
    service: ServingService = request.app.state.serving
    service.start()
    return service


def _experiments(service: ServingService, endpoint: str) -> list[ExperimentOut]:
    """The endpoint's newest experiments with their results per arm."""
    with service.sessions() as session:
        found = logic.list_experiments(session, endpoint)[:EXPERIMENTS_SHOWN]
        return [experiment_out(e, logic.experiment_results(session, e)) for e in found]


def stats_chart(minutes: list[Any]) -> dict[str, Any]:
    """uPlot data: one x axis (period start, epoch seconds, UTC) and per version the series of
    records a period, error rate, p50 and p99 latency (null where a version answered nothing)."""
    times = sorted({_epoch(m.minute) for m in minutes})
    position = {t: i for i, t in enumerate(times)}
    by_version: dict[int, dict[str, list[float | None]]] = defaultdict(
        lambda: {key: [None] * len(times) for key in ("records", "error_rate", "p50_ms", "p99_ms")}
    )
    for m in minutes:
        series = by_version[m.version]
        index = position[_epoch(m.minute)]
        series["records"][index] = m.records
        series["error_rate"][index] = m.error_rate
        series["p50_ms"][index] = m.p50_ms
        series["p99_ms"][index] = m.p99_ms
    return {"times": times, "versions": {str(v): s for v, s in sorted(by_version.items())}}


def quality_chart(hourly: dict[Any, Any]) -> dict[str, Any]:
    """uPlot data of online quality per version and hour (null where no outcome)."""
    times = sorted({_epoch(hour) for _, hour in hourly})
    position = {t: i for i, t in enumerate(times)}
    versions: dict[str, dict[str, list[float | None]]] = {}
    for (version, hour), proportion in sorted(hourly.items()):
        series = versions.setdefault(str(version), {"quality": [None] * len(times)})
        series["quality"][position[_epoch(hour)]] = proportion.value
    return {"times": times, "versions": versions}


def _epoch(moment: Any) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())  # the store keeps naive UTC
