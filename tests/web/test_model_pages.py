"""The model pages over HTTP: list, versions side by side, chart data, alias history, and
buttons only for the roles that may use them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.auth.service import add_user
from conveyor.models.service import ModelOps
from conveyor.pipelines.heart.data import synthetic_csv
from conveyor.settings import ModelSettings

PASSWORD = "correct horse battery"
ROOT = "/conveyor"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def app(installation, tmp_path: Path):  # type: ignore[no-untyped-def]
    dataset = tmp_path / "heart.csv"
    dataset.write_bytes(synthetic_csv(100, seed=21))
    installation.settings.models = {
        "heart": ModelSettings(
            dataset=str(dataset), params={"cv_folds": 3, "candidates": ["logistic_regression"]}
        )
    }
    installation.settings.mlflow_ui_url = "https://mlflow.example/#/models"
    with installation.sessions.begin() as session:
        for name, role in (("ada", "admin"), ("otto", "operator"), ("vic", "viewer")):
            add_user(session, name, PASSWORD, role)
    return create_app(installation, auth_required=True, root_path=ROOT)


def signed_in(app, name: str) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app, root_path=ROOT)
    me = client.post(f"{ROOT}/api/v1/auth/login", json={"name": name, "password": PASSWORD})
    assert me.status_code == 200
    client.headers["X-CSRF-Token"] = me.json()["csrf_token"]
    return client


def _train(client: TestClient, installation, **params) -> None:  # type: ignore[no-untyped-def]
    queued = client.post(f"{ROOT}/api/v1/models/heart/train", json={"params": params})
    assert queued.status_code == 202, queued.text
    installation.controller().run_until_idle(timeout=180)
    ModelOps(installation).register_pending()


def test_model_pages_show_versions_chart_history_and_role_buttons(app, installation) -> None:  # type: ignore[no-untyped-def]
    admin, operator, viewer = (signed_in(app, name) for name in ("ada", "otto", "vic"))
    empty = viewer.get(f"{ROOT}/models")
    assert empty.status_code == 200 and "No model has a registered version yet" in empty.text
    assert f'href="{ROOT}/models" aria-current="page"' in empty.text
    _train(operator, installation)
    _train(operator, installation, candidates="baseline")
    promoted = admin.post(
        f"{ROOT}/api/v1/models/heart/promote", json={"version": 2, "reason": HOSTILE}
    )
    assert promoted.status_code == 200

    listing = viewer.get(f"{ROOT}/models").text
    assert f'href="{ROOT}/models/heart"' in listing and "heldout_roc_auc 0." in listing
    assert 'href="https://mlflow.example/#/models"' in listing

    page = viewer.get(f"{ROOT}/models/heart").text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert [v for v in re.findall(r'data-version="(\d+)"', page)] == ["2", "1"]
    assert 'id="model-chart"' in page and f'src="{ROOT}/static/model.js' in page
    chart = json.loads(re.search(r'id="model-chart-data">(.*?)</script>', page).group(1))
    assert chart["versions"] == [1, 2] and len(chart["metrics"]["heldout_roc_auc"]) == 2
    assert "promotion gate" in page and "api:ada" in page
    assert "data-post=" not in page  # a viewer gets no buttons

    operated = operator.get(f"{ROOT}/models/heart").text
    assert 'data-post="/api/v1/models/heart/train"' in operated
    assert "/promote" not in operated and "/rollback" not in operated
    administered = admin.get(f"{ROOT}/models/heart").text
    assert 'data-post="/api/v1/models/heart/rollback"' in administered
    assert administered.count('data-post="/api/v1/models/heart/promote"') == 1  # not the champion


def test_unknown_or_malformed_model_names_are_not_found(app) -> None:  # type: ignore[no-untyped-def]
    viewer = signed_in(app, "vic")
    assert viewer.get(f"{ROOT}/models/nothing").status_code == 404
    assert viewer.get(f"{ROOT}/models/bad'name").status_code == 404
    stranger = TestClient(app, root_path=ROOT)
    moved = stranger.get(f"{ROOT}/models", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"].startswith(f"{ROOT}/login")
