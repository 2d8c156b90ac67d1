"""Bodies of the training steps (imported when a step runs, so discovering the pipeline imports
no PyTorch). Each reads what it needs from the work folder, so any step can run again on any
worker; the rows are split by the built-in heart pipeline's ``prepare``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from conveyor.errors import PermanentStepError
from conveyor.models import onnx, pytorch, tabular
from conveyor.models.training import TrainingPipeline
from conveyor.pipeline import StepContext
from conveyor.pipelines.heart.data import HEART_SCHEMA
from conveyor.pipelines.heart.training import HELDOUT_TABLE, TRAIN_TABLE
from conveyor.pipelines.heart.training import prepare as prepare
from heart_torch.network import train_network

PROGRAM_FILE = "model.pt2"
ONNX_FILE = "model.onnx"
FEATURES, TARGET = HEART_SCHEMA.features, HEART_SCHEMA.target


def _table(context: StepContext, name: str) -> pd.DataFrame:
    with context.storage.open(context.work_dir, name) as stream:
        return pd.read_csv(stream, dtype=float)


def _fit(table: pd.DataFrame, hidden: int, params: dict[str, Any]) -> Any:
    torch.set_num_threads(1)  # a tiny network: threads cost more than they give
    network = train_network(
        table[FEATURES],
        tabular.binary_target(table, TARGET),
        HEART_SCHEMA,
        hidden,
        params["epochs"],
        params["learning_rate"],
        params["seed"],
    )
    return pytorch.NetworkClassifier(network)


def compare(context: StepContext, pipeline: TrainingPipeline) -> dict[str, Any]:
    """Cross-validate one network per hidden-layer width."""
    from sklearn.model_selection import StratifiedKFold

    _, params = pipeline.request_of(context.record)
    train = _table(context, TRAIN_TABLE)
    labels = tabular.binary_target(train, TARGET)
    folds = StratifiedKFold(params["cv_folds"], shuffle=True, random_state=params["seed"])
    report = {}
    for hidden in params["hidden"]:
        scores = []
        for fit_rows, check_rows in folds.split(train, labels):
            model = _fit(train.iloc[fit_rows], hidden, params)
            check = train.iloc[check_rows]
            scores.append(tabular.evaluate(model, check[FEATURES], labels.iloc[check_rows]))
        report[f"mlp_{hidden}"] = {
            metric: {
                "mean": float(np.mean([s[metric] for s in scores])),
                "std": float(np.std([s[metric] for s in scores])),
            }
            for metric in scores[0]
        }
    chosen = tabular.best_candidate(report, params["selection_metric"])
    context.log.info("cross-validated: %s; chosen: %s", report, chosen)
    return {"candidates": report, "chosen": chosen, "selection_metric": params["selection_metric"]}


def fit_chosen(context: StepContext, pipeline: TrainingPipeline, chosen: str) -> dict[str, Any]:
    """Fit on every training row, save the program and its ONNX export (checked to agree)."""
    _, params = pipeline.request_of(context.record)
    model = _fit(_table(context, TRAIN_TABLE), int(chosen.removeprefix("mlp_")), params)
    heldout = _table(context, HELDOUT_TABLE)
    metrics = tabular.evaluate(model, heldout[FEATURES], tabular.binary_target(heldout, TARGET))
    example = heldout[FEATURES].head(8).to_numpy()
    context.save_artifact(PROGRAM_FILE, pytorch.save_program(model.network, example))
    onnx_bytes = pytorch.to_onnx_bytes(model.network, len(FEATURES))
    try:
        agreement = onnx.check_agreement(
            model, onnx_bytes, heldout[FEATURES], params["onnx_tolerance"]
        )
    except onnx.OnnxMismatchError as error:
        raise PermanentStepError(str(error)) from error
    context.save_artifact(ONNX_FILE, onnx_bytes)
    context.log.info("%s on held-out rows: %s; ONNX agrees: %s", chosen, metrics, agreement)
    return {"heldout": metrics, "onnx": {"onnx_exported": 1} | agreement.as_metrics()}


def summarize(
    context: StepContext,
    pipeline: TrainingPipeline,
    prepared: dict[str, Any],
    compared: dict[str, Any],
    fitted: dict[str, Any],
) -> dict[str, Any]:
    outcome = pipeline.outcome(
        context.record,
        prepared,
        compared,
        fitted,
        artifacts={
            "model": PROGRAM_FILE,
            "onnx": ONNX_FILE,
            "train": TRAIN_TABLE,
            "heldout": HELDOUT_TABLE,
        },
        onnx=fitted["onnx"],
        features=FEATURES,
        target=TARGET,
    )
    return outcome.to_result()
