"""Against a remote MLflow tracking server (``mlflow server`` on loopback), as replicas on several
machines use it (docs/serving.md): training registers through it, aliases move through it, and
serving loads and switches versions from it, with nothing under the home's own mlflow folder."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.installation import Installation
from conveyor.models.registry import ModelRegistry
from conveyor.models.service import ModelOps
from conveyor.pipelines.heart.data import synthetic_csv
from conveyor.settings import load_settings
from conveyor.store import queries
from support.mlflow_server import MlflowServer
from support.up import free_port

pytestmark = pytest.mark.slow
FAST = {"cv_folds": 3, "candidates": "logistic_regression"}
HEART_RECORD = {
    "age": 61.0, "sex": 1.0, "cp": 4.0, "trestbps": 140.0, "chol": 260.0, "fbs": 0.0,
    "restecg": 2.0, "thalach": 120.0, "exang": 1.0, "oldpeak": 2.5, "slope": 2.0,
    "ca": 2.0, "thal": 7.0,
}  # fmt: skip
PREDICT = "/api/v1/endpoints/heart/predict"


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), free_port())
    try:
        server.wait_until_up()
        yield server.url
    finally:
        server.stop()


def _train(installation: Installation, dataset: Path) -> int:
    ops = ModelOps(installation)
    submission = ops.train("heart", {"dataset": str(dataset), **FAST})
    installation.controller().run_until_idle(timeout=300)
    with installation.sessions() as session:
        item = queries.get_item(session, submission.item_id)
    assert item.status == "succeeded", item.error
    [registration] = ops.register_pending()
    return registration.version


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_training_registry_aliases_and_serving_through_a_tracking_server(
    tmp_path: Path, database_url: str, ray_cluster: str, tracking_server: str
) -> None:
    home = tmp_path / "home"
    settings = load_settings(
        home,
        database_url=database_url,
        mlflow_tracking_uri=tracking_server,
        ray_address=ray_cluster,
    )
    installation = Installation(settings)
    dataset = tmp_path / "heart.csv"
    dataset.write_bytes(synthetic_csv(120, seed=1))
    try:
        assert _train(installation, dataset) == 1
        assert _train(installation, dataset) == 2
        remote = ModelRegistry(tracking_server)  # any other machine's view
        assert remote.aliases("heart")["champion"] == 2  # same data and family: not worse
        ModelOps(installation).rollback("heart", actor="test", reason="check the server")
        assert remote.aliases("heart")["champion"] == 1

        _serve_and_follow(installation, remote)
    finally:
        installation.close()
    assert not (home / "mlflow").exists(), "something was written to the embedded store"


def _serve_and_follow(installation: Installation, remote: ModelRegistry) -> None:
    """A replica answers from the server's champion and follows an alias moved elsewhere."""
    app = create_app(installation, auth_required=False)
    client = TestClient(app)
    try:
        first = client.post(PREDICT, json=HEART_RECORD)
        assert first.status_code == 200, first.text
        assert first.json()["version"] == 1
        remote.set_alias("heart", "champion", 2)
        moved = time.monotonic()
        while client.post(PREDICT, json=HEART_RECORD).json()["version"] != 2:
            assert time.monotonic() - moved < 10, "serving did not follow the server's alias"
            time.sleep(0.1)
    finally:
        app.state.serving.close()
