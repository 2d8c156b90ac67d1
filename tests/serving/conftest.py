"""Serving fixtures: real MLflow registries with small heart models registered directly (no
training run: a fit takes a second, a run through the engine much longer)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture
def heart_record() -> dict[str, Any]:
    return {
        "age": 61.0, "sex": 1.0, "cp": 4.0, "trestbps": 140.0, "chol": 260.0, "fbs": 0.0,
        "restecg": 2.0, "thalach": 120.0, "exang": 1.0, "oldpeak": 2.5, "slope": 2.0,
        "ca": 2.0, "thal": 7.0,
    }  # fmt: skip
