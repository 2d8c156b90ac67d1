"""/api/v1/stats, /stats/steps, /workers and /pipelines: what the dashboard shows
(monitoring/overview.py computes it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from conveyor.api.security import viewer
from conveyor.monitoring import overview

router = APIRouter(tags=["stats"])


@router.get("/stats", dependencies=[viewer])
def stats(request: Request) -> dict[str, Any]:
    """Counts by status per pipeline, items finished per minute and items waiting or running
    at the end of each minute (last hour), drain ETA."""
    return overview.item_stats(request.app.state.installation)


@router.get("/stats/steps", dependencies=[viewer])
def step_durations(request: Request) -> dict[str, Any]:
    """Median and 95th percentile run time per pipeline and step, over the succeeded and failed
    step runs of the last hour (at most the latest 1000), as the step duration histogram sees
    them."""
    return overview.step_duration_stats(request.app.state.installation)


@router.get("/workers", dependencies=[viewer])
def workers(request: Request) -> dict[str, Any]:
    """Ray nodes with their resources and what is in use on each, and the step runs running
    now (empty when this process is not connected to Ray)."""
    return overview.worker_stats(request.app.state.installation)


@router.get("/pipelines", dependencies=[viewer])
def pipelines(request: Request) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "version": p.version,
            "accepts": list(p.accepts),
            "description": p.description,
            "dag": {s: list(p.dependencies[s]) for s in p.order},
        }
        for p in request.app.state.installation.registry
    ]
