"""ONNX exports predict what the native scikit-learn model predicts, or are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conveyor.models import onnx, tabular
from conveyor.models.schema import parse_table
from conveyor.models.service import ModelOps
from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_csv
from conveyor.store import queries


def _split():  # type: ignore[no-untyped-def]
    table = parse_table(HEART_SCHEMA, synthetic_csv(150, seed=5), "synthetic")
    return tabular.stratified_split(table, HEART_SCHEMA, 0.25, 0, 3)


@pytest.mark.parametrize("family", ["logistic_regression", "svm", "gradient_boosting"])
def test_onnx_and_native_predictions_agree_on_heldout_rows(family: str) -> None:
    split = _split()
    model = tabular.fit(split.train, HEART_SCHEMA, family, seed=0)
    exported = onnx.to_onnx_bytes(model, len(HEART_SCHEMA.features))
    agreement = onnx.check_agreement(model, exported, split.heldout[HEART_SCHEMA.features])
    assert agreement.rows == len(split.heldout) and agreement.label_agreement == 1.0
    assert agreement.max_probability_difference < 1e-4


def test_disagreeing_export_is_refused_with_a_clear_message() -> None:
    split = _split()
    model = tabular.fit(split.train, HEART_SCHEMA, "logistic_regression", seed=0)
    other = tabular.fit(split.train, HEART_SCHEMA, "gradient_boosting", seed=0)
    exported = onnx.to_onnx_bytes(other, len(HEART_SCHEMA.features))
    with pytest.raises(onnx.OnnxMismatchError, match="disagrees with the native model"):
        onnx.check_agreement(model, exported, split.heldout[HEART_SCHEMA.features])


def test_unconvertible_model_is_reported_not_crashed() -> None:
    model = tabular.fit(_split().train, HEART_SCHEMA, "baseline", seed=0)
    with pytest.raises(onnx.OnnxUnsupportedError, match="cannot convert DummyClassifier"):
        onnx.to_onnx_bytes(model, len(HEART_SCHEMA.features))


def test_exported_champion_file_predicts_like_the_registered_model(
    installation, tmp_path: Path
) -> None:
    dataset = tmp_path / "heart.csv"
    dataset.write_bytes(synthetic_csv(100, seed=4))
    ops = ModelOps(installation)
    ops.train("heart", {"dataset": str(dataset), "cv_folds": 3, "candidates": "svm"})
    installation.controller().run_until_idle(timeout=180)
    [registration] = ops.register_pending()
    target = tmp_path / "device" / "heart.onnx"
    assert ops.export_onnx("heart", target) == registration.version
    with installation.sessions() as session:
        work_dir = queries.get_item(session, registration.item_id).work_dir
    heldout = tmp_path / "heldout.csv"
    installation.storage.download(work_dir, "heldout.csv", heldout)
    features = parse_table(HEART_SCHEMA, heldout.read_bytes(), "heldout")[HEART_SCHEMA.features]
    labels, _ = onnx.onnx_predict(target.read_bytes(), features.to_numpy())
    native = ops.tracking.load_sklearn("heart", registration.version)
    assert np.array_equal(labels, native.predict(features))
    run = ops.tracking.client.get_run(ops.versions("heart")[0].run_id)
    assert run.data.metrics["onnx_label_agreement"] == 1.0
