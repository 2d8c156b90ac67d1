"""The model pages: every registered model, and one model's versions, chart and alias history.

They read through the /api/v1/models route functions, so they show what the API shows; the
buttons (train, promote, roll back) call those API routes from the browser.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.api.errors import ApiError
from conveyor.api.routes import models as models_api
from conveyor.auth.roles import Role, allows
from conveyor.auth.service import Principal
from conveyor.errors import ConveyorError
from conveyor.web import views
from conveyor.web.routes import Viewer, _page

router = APIRouter(include_in_schema=False)
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # as the API's path parameter


@router.get("/models", name="web_models")
def models_page(request: Request, principal: Principal = Viewer) -> Response:
    rows = []
    for summary in models_api.list_models(request).models:
        versions = models_api.show_model(request, summary.name).versions
        metric = _key_metric(request, summary.name)
        champion = next((v for v in versions if v.version == summary.champion), None)
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
        detail = models_api.show_model(request, name)
    except (ApiError, ConveyorError) as error:
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
        history=models_api.alias_history(request, name).changes,
        can_admin=allows(principal.role, Role.ADMIN),
        **_mlflow(request),
    )


def _key_metric(request: Request, model: str) -> str | None:
    """The metric the promotion gate compares for ``model`` (settings, else its pipeline's)."""
    configured = request.app.state.installation.settings.models.get(model)
    if configured and configured.promotion_metric:
        return configured.promotion_metric
    try:
        return models_api._ops(request).pipeline(model).promotion_metric
    except ConveyorError:
        return None


def _mlflow(request: Request) -> dict[str, Any]:
    """The MLflow UI link, when the settings name one (never another scheme than http(s))."""
    url = request.app.state.installation.settings.mlflow_ui_url or ""
    return {"mlflow_ui_url": url if url.startswith(("http://", "https://")) else None}
