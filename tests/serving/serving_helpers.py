"""Helpers of the serving tests: real MLflow registries with small models registered directly
(no training run: a fit takes a second, a run through the engine much longer)."""

from __future__ import annotations

import signal
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.models.registry import ModelRegistry

HEART = "heart"


def heart_table(rows: int = 120, seed: int = 1) -> Any:
    from conveyor.models.schema import parse_table
    from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_csv

    return parse_table(HEART_SCHEMA, synthetic_csv(rows, seed=seed), "synthetic")


def register_heart(
    tracking: ModelRegistry,
    folder: Path,
    seed: int = 1,
    candidate: str = "logistic_regression",
    alias: str | None = "champion",
    onnx: bool = True,
    onnx_bytes: bytes | None = None,
) -> tuple[int, str]:
    """Fit a small heart classifier and register it like the registrar does (run with the
    dataset digest, sklearn model with signature and example, ONNX file); (version, digest)."""
    from conveyor.models import tabular
    from conveyor.models.onnx import to_onnx_bytes
    from conveyor.pipelines.heart.data import HEART_SCHEMA

    table = heart_table(seed=seed)
    model = tabular.fit(table, HEART_SCHEMA, candidate, seed)
    digest = uuid.uuid4().hex + uuid.uuid4().hex
    item_id = uuid.uuid4().hex
    run_id = tracking.start_run(
        HEART, item_id, {"conveyor.dataset_sha256": digest}, datetime.now(UTC)
    )
    tracking.log_values(run_id, {"dataset_sha256": digest}, {})
    example = table[HEART_SCHEMA.features].dropna().head(5)
    uri = tracking.log_sklearn_model(run_id, model, example, [])
    if onnx:
        path = folder / f"{item_id}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(onnx_bytes or to_onnx_bytes(model, len(HEART_SCHEMA.features)))
        local = folder / item_id / "model.onnx"
        local.parent.mkdir(parents=True)
        path.rename(local)
        tracking.log_file(run_id, local, "onnx")
    version = tracking.register(HEART, uri, run_id, item_id)
    if alias:
        tracking.set_alias(HEART, alias, version)
    return version, digest


def register_movies(tracking: ModelRegistry, folder: Path) -> int:
    """A small SVD recommender on synthetic ratings, logged by the movies flavor."""
    import io

    import pandas as pd

    from conveyor.pipelines.movies.data import synthetic_ratings
    from conveyor.pipelines.movies.recommender import fit
    from conveyor.pipelines.movies.serving import RecommenderFlavor

    ratings = pd.read_csv(
        io.BytesIO(synthetic_ratings(60, 120, 20, seed=3)),
        names=["userId", "movieId", "rating", "timestamp"],
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recommender.npz"
    fit(ratings, "svd", 8, 42).save(path)
    item_id = uuid.uuid4().hex
    run_id = tracking.start_run("movies", item_id, {}, datetime.now(UTC))
    tracking.log_values(run_id, {"dataset_sha256": "m" * 64}, {})
    uri = RecommenderFlavor().log(tracking, run_id, {"model": path}, None)  # type: ignore[arg-type]
    version = tracking.register("movies", uri, run_id, item_id)
    tracking.set_alias("movies", "champion", version)
    return version


class Serving:
    """An installation on ``home`` with its API app (no logins) and serving service."""

    def __init__(self, home: Path, database_url: str) -> None:
        from fastapi.testclient import TestClient

        from conveyor.api.app import create_app
        from conveyor.installation import Installation
        from conveyor.settings import load_settings

        self.installation = Installation(load_settings(home, database_url=database_url))
        self.app = create_app(self.installation, auth_required=False)
        self.client = TestClient(self.app)

    @property
    def service(self) -> Any:
        from conveyor.api.routes.endpoints import serving_of

        return serving_of(self.app)

    def predict(self, body: Any, endpoint: str = HEART, **kwargs: Any) -> Any:
        return self.client.post(f"/api/v1/endpoints/{endpoint}/predict", json=body, **kwargs)

    def close(self) -> None:
        served = getattr(self.app.state, "serving", None)
        if served is not None:
            served.close()
        self.installation.close()


try:
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - mlflow-skinny always has it
    PythonModel = object  # type: ignore[misc,assignment]


class Misbehaving(PythonModel):  # type: ignore[misc]
    """A heart model that passes the reloader's check on its input example, then fails on
    real traffic: ``mode`` "raise" raises, "sleep" answers after ``seconds``."""

    def __init__(self, mode: str, seconds: float = 0.5) -> None:
        self.mode, self.seconds = mode, seconds

    def load_context(self, context: Any) -> None:
        self.checked = False

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        if not getattr(self, "checked", True):
            self.checked = True  # the first call is the reloader's verification
        elif self.mode == "raise":
            raise RuntimeError("misbehaving canary: failing on purpose")
        else:
            import time

            time.sleep(self.seconds)
        return [0] * len(model_input)


def register_misbehaving(tracking: ModelRegistry, mode: str, seconds: float = 0.5) -> int:
    """Register a :class:`Misbehaving` heart version (no alias); returns its number."""
    from conveyor.pipelines.heart.data import HEART_SCHEMA

    example = heart_table()[HEART_SCHEMA.features].dropna().head(5)
    item_id = uuid.uuid4().hex
    run_id = tracking.start_run(HEART, item_id, {}, datetime.now(UTC))
    tracking.log_values(run_id, {"dataset_sha256": "f" * 64}, {})
    model = Misbehaving(mode, seconds)
    uri = tracking.log_python_model(run_id, model, {}, example, [0] * len(example), [])
    return tracking.register(HEART, uri, run_id, item_id)


def interrupt(process: subprocess.Popen, timeout: float = 30) -> None:  # type: ignore[type-arg]
    """Ctrl-C, as a user stops ``conveyor serve``; SIGKILL if it has not ended by ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
