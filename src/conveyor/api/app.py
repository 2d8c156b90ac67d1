"""The FastAPI application: API under /api/v1, health, metrics and the web UI.

:func:`create_app` is where an app is put together, in this order: its services
(api/services.py, the one place they are built), error handlers (api/errors.py), routers,
then the middleware in the order api/middleware.py fixes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from conveyor import __version__
from conveyor.api.errors import error_body, error_responses, install_error_handlers
from conveyor.api.middleware import install_middleware
from conveyor.api.params import reject_nul_characters
from conveyor.api.plugins import include_pipeline_routes
from conveyor.api.routes import (
    accounts,
    alerts,
    auth,
    datasets,
    endpoints,
    experiment_segments,
    experiments,
    hardware,
    inbox,
    items,
    models,
    predictions,
    results,
    scoring,
    stats,
    streams,
)
from conveyor.api.services import install_services, lifespan
from conveyor.installation import Installation
from conveyor.web import account_pages, alert_pages, model_pages, serving_pages, stream_pages
from conveyor.web import routes as web
from conveyor.web.assets import mount_static_files


def create_app(
    installation: Installation, auth_required: bool | None = None, root_path: str = ""
) -> FastAPI:
    app = FastAPI(
        title="Conveyor",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        root_path=root_path,
        dependencies=[Depends(reject_nul_characters)],
        lifespan=lifespan,
    )
    if auth_required is None:
        auth_required = installation.settings.auth_required
    install_services(app, installation, auth_required)
    install_error_handlers(app)
    api = APIRouter(prefix="/api/v1", responses=error_responses(401, 403, 422))
    for module in (auth, items, results, inbox, stats, hardware, models, datasets):
        api.include_router(module.router)
    for module in (endpoints, predictions, experiments):  # model serving (docs/serving.md)
        api.include_router(module.router)
    api.include_router(experiment_segments.router)  # results per segment of requests
    api.include_router(alerts.router)  # Alertmanager's webhook receiver (docs/monitoring.md)
    api.include_router(streams.router)  # broker sources (docs/streams.md)
    api.include_router(scoring.router)  # batch scoring jobs (docs/scoring.md)
    api.include_router(accounts.users_router)
    api.include_router(accounts.tokens_router)
    app.include_router(api)
    include_pipeline_routes(app, installation.registry)  # PipelineHooks.api_routes
    app.include_router(_operations_router())
    app.include_router(web.router)
    app.include_router(model_pages.router)
    app.include_router(serving_pages.router)
    app.include_router(account_pages.router)
    app.include_router(alert_pages.router)
    app.include_router(stream_pages.router)
    mount_static_files(app, installation.registry)  # the core's and PipelineHooks.static_assets
    app.state.predict_handler = endpoints.fast_handler(app)
    install_middleware(app)  # all middleware, in the order api/middleware.py explains
    return app


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", responses=error_responses(503))
    def readyz(request: Request) -> Any:
        checks = _readiness(request.app.state.installation)
        ready = all(check == "ok" for check in checks.values())
        if ready:
            return {"status": "ready", "checks": checks}
        body = error_body("not_ready", "a dependency is not ready", checks)
        return JSONResponse(body, status_code=503)

    @router.get("/metrics")
    def metrics(request: Request) -> Response:
        return Response(
            request.app.state.metrics.exposition(), media_type="text/plain; version=0.0.4"
        )

    return router


def _readiness(installation: Installation) -> dict[str, str]:
    """The store always (a load balancer takes out a replica that cannot reach it); Ray only
    where this process runs a controller (``conveyor serve`` and API-only replicas have none)."""
    checks = {"store": _store_check(installation)}
    if installation.uses_executor:
        checks["ray"] = _ray_check()
    return checks


def _store_check(installation: Installation) -> str:
    try:
        with installation.engine.connect() as connection:
            connection.execute(text("select 1"))
        return "ok"
    except Exception as error:
        return f"error: {type(error).__name__}"


def _ray_check() -> str:
    import ray

    try:
        return "ok" if ray.is_initialized() and ray.cluster_resources() else "not connected"
    except Exception as error:
        return f"error: {type(error).__name__}"
