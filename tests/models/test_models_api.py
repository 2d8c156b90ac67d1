"""/api/v1/models: what a model's versions, metrics and history look like over HTTP, and who
may train, promote and roll back."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.auth.service import create_token
from conveyor.models.service import ModelOps
from conveyor.pipelines.heart.data import synthetic_csv
from conveyor.settings import ModelSettings


@pytest.fixture
def clients(installation, tmp_path: Path):  # type: ignore[no-untyped-def]
    dataset = tmp_path / "heart.csv"
    dataset.write_bytes(synthetic_csv(100, seed=21))
    installation.settings.models = {
        "heart": ModelSettings(
            dataset=str(dataset), params={"cv_folds": 3, "candidates": ["logistic_regression"]}
        )
    }
    with installation.sessions.begin() as session:
        tokens = {
            role: create_token(session, role, role) for role in ("viewer", "operator", "admin")
        }
    app = create_app(installation, auth_required=True)
    return {
        role: TestClient(app, headers={"Authorization": f"Bearer {token}"})
        for role, token in tokens.items()
    }


def _train(clients, installation, **params) -> str:  # type: ignore[no-untyped-def]
    queued = clients["operator"].post("/api/v1/models/heart/train", json={"params": params})
    assert queued.status_code == 202, queued.text
    installation.controller().run_until_idle(timeout=180)
    ModelOps(installation).register_pending()
    return queued.json()["item_id"]


def test_train_list_show_history_promote_rollback_and_onnx(clients, installation) -> None:
    assert clients["viewer"].get("/api/v1/models").json() == {"models": []}
    assert clients["viewer"].post("/api/v1/models/heart/train", json={}).status_code == 403
    _train(clients, installation)
    _train(clients, installation, candidates="baseline")
    listed = clients["viewer"].get("/api/v1/models").json()["models"]
    assert listed == [{"name": "heart", "versions": 2, "champion": 1, "challenger": 2}]
    detail = clients["viewer"].get("/api/v1/models/heart").json()
    assert detail["aliases"] == {"champion": 1, "challenger": 2}
    newest, oldest = detail["versions"]
    assert oldest["metrics"]["heldout_roc_auc"] > newest["metrics"]["heldout_roc_auc"]
    assert oldest["params"]["chosen_candidate"] == "logistic_regression"

    assert (
        clients["operator"].post("/api/v1/models/heart/promote", json={"version": 2}).status_code
        == 403
    )
    promoted = clients["admin"].post(
        "/api/v1/models/heart/promote", json={"version": 2, "reason": "field test"}
    )
    assert promoted.status_code == 200 and promoted.json()["to_version"] == 2
    rolled = clients["admin"].post(
        "/api/v1/models/heart/rollback", json={"reason": "too many alarms"}
    )
    assert rolled.json()["to_version"] == 1 and rolled.json()["actor"] == "api:admin"
    again = clients["admin"].post("/api/v1/models/heart/rollback", json={})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    history = clients["viewer"].get("/api/v1/models/heart/history").json()["changes"]
    assert [(c["action"], c["actor"]) for c in history] == [
        ("promote", "promotion gate"),
        ("challenge", "promotion gate"),
        ("promote", "api:admin"),
        ("rollback", "api:admin"),
    ]

    exported = clients["viewer"].get("/api/v1/models/heart/onnx")
    assert exported.status_code == 200
    onnx.checker.check_model(onnx.load_from_string(exported.content))
    missing = clients["viewer"].get("/api/v1/models/heart/onnx", params={"version": 2})
    assert missing.status_code == 404 and "no ONNX export" in missing.json()["error"]["message"]


def test_api_refuses_paths_unknown_models_and_bad_parameters(clients) -> None:
    operator = clients["operator"]
    path = operator.post("/api/v1/models/heart/train", json={"params": {"dataset": "/etc/passwd"}})
    assert path.status_code == 422 and "no file paths" in path.json()["error"]["message"]
    bad = operator.post("/api/v1/models/heart/train", json={"params": {"candidates": 7}})
    assert bad.status_code == 422, bad.text
    assert operator.post("/api/v1/models/nothing/train", json={}).status_code == 404
    assert clients["viewer"].get("/api/v1/models/nothing").status_code == 404
    assert clients["viewer"].get("/api/v1/models/bad'name").status_code == 422


def test_new_rows_through_the_api_are_checked_and_counted(clients) -> None:
    operator = clients["operator"]
    good = "63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\n57,0,4,120,354,0,0,163,1,0.6,1,0,3,1\n"
    added = operator.post("/api/v1/models/heart/rows", json={"csv": good, "source": "band-17"})
    assert added.status_code == 201 and added.json() == {"added": 2, "waiting": 2, "total": 2}
    bad = operator.post(
        "/api/v1/models/heart/rows", json={"csv": "63,1,9,145,233,1,2,150,0,2.3,3,0,6,0"}
    )
    assert (
        bad.status_code == 422 and "column 'cp': 9 is not one of" in bad.json()["error"]["message"]
    )
    assert (
        clients["viewer"].post("/api/v1/models/heart/rows", json={"csv": good}).status_code == 403
    )
    assert operator.post("/api/v1/models/noop/rows", json={"csv": good}).status_code == 422


def test_published_events_start_a_run_once_when_their_type_is_listed(clients, installation) -> None:
    installation.settings.models["heart"].retrain_on_events = ["drift-detected"]
    operator = clients["operator"]
    event = {"type": "drift-detected", "payload": {"psi": 0.31, "window": "7d"}}
    started = operator.post("/api/v1/models/heart/events", json=event)
    assert started.status_code == 202 and started.json()["item_id"]
    other = operator.post("/api/v1/models/heart/events", json={"type": "battery-low"})
    assert other.status_code == 202 and other.json()["item_id"] is None
    again = operator.post("/api/v1/models/heart/events", json=event)
    assert again.json()["item_id"] not in (None, started.json()["item_id"])
    assert again.json()["event_id"] > started.json()["event_id"]
    viewer = clients["viewer"].post("/api/v1/models/heart/events", json=event)
    assert viewer.status_code == 403
    bad = operator.post("/api/v1/models/heart/events", json={"type": "<b>", "payload": []})
    assert bad.status_code == 422
    assert operator.post("/api/v1/models/noop/events", json=event).status_code == 422
