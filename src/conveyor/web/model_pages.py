"""The model pages: every registered model, and one model's versions, chart and alias history.

They read through the app's ModelOps (models/catalog.py), as the /api/v1/models routes do, so
they show what the API shows; the buttons (train, promote, roll back) call those API routes
from the browser.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.auth.roles import Role, allows
from conveyor.auth.service import Principal
from conveyor.errors import ConveyorError
from conveyor.models.catalog import model_entries, model_entry
from conveyor.models.service import ModelOps
from conveyor.web import views
from conveyor.web.routes import Viewer, _page

router = APIRouter(include_in_schema=False)
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # as the API's path parameter


@router.get("/models", name="web_models")
def models_page(request: Request, principal: Principal = Viewer) -> Response:
    rows = []
    for entry in model_entries(_ops(request)):
        versions = entry.versions
        metric = _key_metric(request, entry.name)
        champion = next((v for v in versions if v.version == entry.champion), None)
        summary = {
            "name": entry.name,
            "champion": entry.champion,
            "challenger": entry.challenger,
            "versions": len(versions),
        }
        rows.append(
            {
                "summary": summary,
                "metric": views.key_metric_name(metric, [v.metrics for v in versions]),
                "champion_metrics": champion.metrics if champion else {},
            }
        )
    return _page(request, "models.html", principal, models=rows, **_mlflow(request))


@router.get("/models/{name}", name="web_model")
def model_page(request: Request, name: str, principal: Principal = Viewer) -> Response:
    if not MODEL_NAME.fullmatch(name):
        return _page(request, "missing.html", principal, status_code=404, message="no such model")
    try:
        detail = model_entry(_ops(request), name)
    except ConveyorError as error:
        return _page(request, "missing.html", principal, status_code=404, message=str(error))
    versions = detail.versions
    metrics = views.metric_names([v.metrics for v in versions])
    chosen = views.key_metric_name(_key_metric(request, name), [v.metrics for v in versions])
    return _page(
        request,
        "model.html",
        principal,
        model=detail,
        metrics=metrics,
        chosen_metric=chosen,
        chart=views.metric_chart(versions),
        history=_ops(request).history(name),
        can_admin=allows(principal.role, Role.ADMIN),
        **_mlflow(request),
    )


def _key_metric(request: Request, model: str) -> str | None:
    """The metric the promotion gate compares for ``model`` (settings, else its pipeline's)."""
    configured = request.app.state.installation.settings.models.get(model)
    if configured and configured.promotion_metric:
        return configured.promotion_metric
    try:
        return _ops(request).pipeline(model).promotion_metric
    except ConveyorError:
        return None


def _ops(request: Request) -> ModelOps:
    ops: ModelOps = request.app.state.model_ops
    return ops


def _mlflow(request: Request) -> dict[str, Any]:
    """The MLflow UI link, when the settings name one (never another scheme than http(s))."""
    url = request.app.state.installation.settings.mlflow_ui_url or ""
    return {"mlflow_ui_url": url if url.startswith(("http://", "https://")) else None}
