"""`conveyor train` and `conveyor models ...` as a user types them."""

from __future__ import annotations

from pathlib import Path

import onnx
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.pipelines.heart.data import synthetic_csv


def test_train_wait_prints_metrics_then_models_commands(
    tmp_path: Path, ray_cluster: str, monkeypatch
) -> None:
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", f"sqlite:///{tmp_path / 'conveyor.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    dataset = tmp_path / "heart.csv"
    dataset.write_bytes(synthetic_csv(100, seed=7))
    runner = CliRunner()

    def run(*arguments: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["--home", str(tmp_path / "home"), *arguments])

    trained = run("train", "heart", "-P", f"dataset={dataset}", "-P", "cv_folds=3", "--wait")
    assert trained.exit_code == 0, trained.output
    for text in (
        "logistic_regression",
        "svm",
        "gradient_boosting",
        "roc_auc",
        "brier",
        "held-out rows",
        "registered heart v1 as champion",
    ):
        assert text in trained.output
    worse = run(
        "train",
        "heart",
        "-P",
        f"dataset={dataset}",
        "-P",
        "candidates=baseline",
        "-P",
        "cv_folds=3",
        "--wait",
    )
    assert worse.exit_code == 0 and "heart v2 as challenger: worse than the champion" in (
        worse.output
    )
    shown = run("models", "show", "heart")
    assert "v2" in shown.output and "challenger" in shown.output and "champion" in shown.output
    assert "heart" in run("models", "list").output
    history = run("models", "history", "heart").output
    assert "promotion gate" in history and "challenge" in history
    refused = run("models", "rollback", "heart")
    assert refused.exit_code == 2 and "no earlier champion" in refused.output
    target = tmp_path / "heart.onnx"
    exported = run("models", "export", "heart", "--format", "onnx", "-o", str(target))
    assert exported.exit_code == 0 and "heart v1" in exported.output
    onnx.checker.check_model(onnx.load(target))
    missing = run("models", "export", "heart", "--alias", "challenger", "-o", str(target))
    assert missing.exit_code == 2 and "has no ONNX export" in missing.output
    bad = run("train", "heart", "-P", "cv_folds=x")
    assert bad.exit_code == 2 and "cv_folds" in bad.output
