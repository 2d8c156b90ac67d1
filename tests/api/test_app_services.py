"""create_app is the composition root: it builds each service once, wraps the app in the
middleware in the documented order, and closes serving when the app shuts down."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.api.bodylimit import BodySizeLimit
from conveyor.api.headers import SecurityHeaders
from conveyor.api.metrics import RequestTimingMiddleware
from conveyor.installation import Installation
from conveyor.models.service import ModelOps
from conveyor.serving.fastpath import PredictFastPath
from conveyor.serving.service import ServingService
from conveyor.settings import load_settings


def test_services_are_built_once_and_serving_closes_on_shutdown(tmp_path: Path) -> None:
    installation = Installation(load_settings(tmp_path / "home"))
    app = create_app(installation, auth_required=False)
    serving, model_ops = app.state.serving, app.state.model_ops
    assert isinstance(serving, ServingService) and isinstance(model_ops, ModelOps)
    outermost_first = [m.cls for m in app.user_middleware]
    assert outermost_first == [
        SecurityHeaders,
        BodySizeLimit,
        PredictFastPath,
        RequestTimingMiddleware,
    ]
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert not serving._stop.is_set()
    assert serving._stop.is_set()  # the lifespan closed it: its loops stop
    assert app.state.serving is serving and app.state.model_ops is model_ops
    installation.close()
