"""What a pipeline package's own API routes may use (``PipelineHooks.api_routes``).

A pipeline names a FastAPI ``APIRouter`` by reference; :func:`include_pipeline_routes` adds it
to the app after the core API, as it is: the router states its own paths (``/api/v1/...``
for API routes, by convention under ``/api/v1/pipelines/<pipeline>/``). Its handlers take the
caller's role from the dependencies below, reach the store through :func:`installation_of`,
raise :class:`ApiError` (or any ``ConveyorError``) for the usual error body, and may ask a
serving endpoint for predictions with :func:`predict`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from conveyor.api.errors import ApiError, error_responses
from conveyor.api.security import admin, operator, viewer
from conveyor.installation import Installation
from conveyor.pipeline.hooks import load_reference
from conveyor.pipeline.registry import PipelineRegistry

__all__ = [
    "ApiError",
    "admin",
    "error_responses",
    "include_pipeline_routes",
    "installation_of",
    "operator",
    "predict",
    "viewer",
]


def installation_of(request: Request) -> Installation:
    """The installation the app serves: its store (``.sessions``), storage and settings."""
    installation: Installation = request.app.state.installation
    return installation


async def predict(
    request: Request, endpoint: str, body: bytes, key: str | None
) -> tuple[int, bytes]:
    """Predictions of serving endpoint ``endpoint`` for a JSON ``body`` (as ``POST
    /api/v1/endpoints/{endpoint}/predict`` takes it), routed by request ``key``, on behalf of
    a caller with at least the viewer role: (HTTP status, JSON body with the predictions or
    the error)."""
    from conveyor.api.routes.endpoints import predict_for_route

    return await predict_for_route(request, endpoint, body, key)


def include_pipeline_routes(app: FastAPI, registry: PipelineRegistry) -> None:
    """Add the routers of every installed pipeline that brings its own."""
    references = {p.hooks.api_routes for p in registry if p.hooks.api_routes}
    for reference in sorted(references):
        app.include_router(load_reference(reference))
