"""Bodies of the heart training steps. Each reads what it needs from the work folder, so any
step can run again on any worker."""

from __future__ import annotations

import io
from typing import Any

import joblib
import pandas as pd

from conveyor.errors import PermanentStepError
from conveyor.models import onnx, tabular
from conveyor.models.provenance import sha256_hex
from conveyor.models.schema import DatasetError, parse_table
from conveyor.models.training import TrainingPipeline
from conveyor.pipeline import StepContext
from conveyor.pipelines.heart.data import HEART_SCHEMA

TRAIN_TABLE = "train.csv"
HELDOUT_TABLE = "heldout.csv"
MODEL_FILE = "model.joblib"
ONNX_FILE = "model.onnx"


def prepare(context: StepContext, pipeline: TrainingPipeline) -> dict[str, Any]:
    request, params = pipeline.request_of(context.record)
    with context.storage.open("", request.dataset) as stream:
        data = stream.read()
    if sha256_hex(data) != request.dataset_sha256:
        raise PermanentStepError(
            f"dataset snapshot {request.dataset} does not match its digest "
            f"{request.dataset_sha256[:12]}; it was changed after submission. Train again."
        )
    try:
        table = parse_table(HEART_SCHEMA, data, request.dataset_source)
        split = tabular.stratified_split(
            table, HEART_SCHEMA, params["test_size"], params["seed"], params["cv_folds"]
        )
    except DatasetError as error:
        raise PermanentStepError(str(error)) from error
    context.save_artifact(TRAIN_TABLE, split.train.to_csv(index=False).encode())
    context.save_artifact(HELDOUT_TABLE, split.heldout.to_csv(index=False).encode())
    labels = tabular.binary_target(table, HEART_SCHEMA.target)
    context.log.info(
        "dataset %s (%s): %d rows, %d with disease; %d train, %d held out",
        request.dataset_source,
        request.dataset_sha256[:12],
        len(table),
        int(labels.sum()),
        len(split.train),
        len(split.heldout),
    )
    return {
        "rows": len(table),
        "positives": int(labels.sum()),
        "missing_values": int(table.isna().sum().sum()),
        "train_rows": len(split.train),
        "heldout_rows": len(split.heldout),
    }


def _table(context: StepContext, name: str) -> pd.DataFrame:
    with context.storage.open(context.work_dir, name) as stream:
        return pd.read_csv(stream, dtype=float)


def compare(context: StepContext, pipeline: TrainingPipeline) -> dict[str, Any]:
    _, params = pipeline.request_of(context.record)
    report = tabular.cross_validate_candidates(
        _table(context, TRAIN_TABLE),
        HEART_SCHEMA,
        params["candidates"],
        params["cv_folds"],
        params["seed"],
    )
    chosen = tabular.best_candidate(report, params["selection_metric"])
    for name, scores in report.items():
        context.log.info(
            "%s: %s",
            name,
            ", ".join(f"{m} {s['mean']:.3f}±{s['std']:.3f}" for m, s in scores.items()),
        )
    context.log.info("chosen by cross-validated %s: %s", params["selection_metric"], chosen)
    return {"candidates": report, "chosen": chosen, "selection_metric": params["selection_metric"]}


def fit_chosen(context: StepContext, pipeline: TrainingPipeline, chosen: str) -> dict[str, Any]:
    _, params = pipeline.request_of(context.record)
    model = tabular.fit(_table(context, TRAIN_TABLE), HEART_SCHEMA, chosen, params["seed"])
    table = _table(context, HELDOUT_TABLE)
    heldout = tabular.evaluate(
        model, table[HEART_SCHEMA.features], tabular.binary_target(table, HEART_SCHEMA.target)
    )
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    context.save_artifact(MODEL_FILE, buffer.getvalue())
    context.log.info("%s on held-out rows: %s", chosen, heldout)
    return {"heldout": heldout}


def export_onnx(context: StepContext, pipeline: TrainingPipeline) -> dict[str, Any]:
    _, params = pipeline.request_of(context.record)
    with context.storage.open(context.work_dir, MODEL_FILE) as stream:
        model = joblib.load(stream)
    features = _table(context, HELDOUT_TABLE)[HEART_SCHEMA.features]
    try:
        onnx_bytes = onnx.to_onnx_bytes(model, len(HEART_SCHEMA.features))
    except onnx.OnnxUnsupportedError as error:
        context.log.warning("no ONNX export: %s", error)
        return {"onnx_exported": 0, "onnx_skipped_reason": str(error)}
    try:
        agreement = onnx.check_agreement(model, onnx_bytes, features, params["onnx_tolerance"])
    except onnx.OnnxMismatchError as error:
        raise PermanentStepError(str(error)) from error
    context.save_artifact(ONNX_FILE, onnx_bytes)
    context.log.info(
        "ONNX agrees with the native model on %d held-out rows (max probability difference %.2g)",
        agreement.rows,
        agreement.max_probability_difference,
    )
    return {"onnx_exported": 1} | agreement.as_metrics()


def summarize(
    context: StepContext,
    pipeline: TrainingPipeline,
    prepared: dict[str, Any],
    compared: dict[str, Any],
    fitted: dict[str, Any],
    exported: dict[str, Any],
) -> dict[str, Any]:
    outcome = pipeline.outcome(
        context.record,
        prepared,
        compared,
        fitted,
        artifacts={"model": MODEL_FILE, "train": TRAIN_TABLE, "heldout": HELDOUT_TABLE}
        | ({"onnx": ONNX_FILE} if exported["onnx_exported"] else {}),
        onnx=exported,
        features=HEART_SCHEMA.features,
        target=HEART_SCHEMA.target,
    )
    return outcome.to_result()
