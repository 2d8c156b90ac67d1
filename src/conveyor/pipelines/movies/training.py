"""Bodies of the movies training steps: each reads its inputs from the work folder."""

from __future__ import annotations

from typing import Any

import pandas as pd

from conveyor.errors import PermanentStepError
from conveyor.models.provenance import sha256_hex
from conveyor.models.schema import DatasetError, parse_table
from conveyor.models.training import TrainingPipeline
from conveyor.pipeline import StepContext
from conveyor.pipelines.movies import recommender
from conveyor.pipelines.movies.data import RATINGS_SCHEMA

TRAIN, HELDOUT, FIT, VALIDATION = "train.csv", "heldout.csv", "fit.csv", "validation.csv"
MODEL_FILE = "recommender.npz"
TOP_N = 20


def _save(context: StepContext, name: str, table: pd.DataFrame) -> None:
    context.save_artifact(name, table.to_csv(index=False).encode())


def _table(context: StepContext, name: str) -> pd.DataFrame:
    with context.storage.open(context.work_dir, name) as stream:
        return pd.read_csv(stream)


def prepare(context: StepContext, pipeline: TrainingPipeline) -> dict[str, Any]:
    request, params = pipeline.request_of(context.record)
    with context.storage.open("", request.dataset) as stream:
        data = stream.read()
    if sha256_hex(data) != request.dataset_sha256:
        raise PermanentStepError(f"dataset snapshot {request.dataset} does not match its digest.")
    try:
        table = parse_table(RATINGS_SCHEMA, data, request.dataset_source)
    except DatasetError as error:
        raise PermanentStepError(str(error)) from error
    train, heldout = recommender.newest_per_user(table, params["test_fraction"])
    fit_rows, validation = recommender.newest_per_user(train, params["test_fraction"])
    if heldout.empty or validation.empty:
        raise PermanentStepError(
            f"too few ratings to hold any out: users need at least {recommender.MIN_RATINGS}."
        )
    for name, part in (
        (TRAIN, train),
        (HELDOUT, heldout),
        (FIT, fit_rows),
        (VALIDATION, validation),
    ):
        _save(context, name, part)
    context.log.info(
        "%d ratings by %d users of %d movies; %d held out (newest per user)",
        len(table),
        table["userId"].nunique(),
        table["movieId"].nunique(),
        len(heldout),
    )
    return {
        "rows": len(table),
        "users": int(table["userId"].nunique()),
        "movies": int(table["movieId"].nunique()),
        "train_rows": len(train),
        "heldout_rows": len(heldout),
    }


def compare(context: StepContext, pipeline: TrainingPipeline) -> dict[str, Any]:
    _, params = pipeline.request_of(context.record)
    fit_rows, validation = _table(context, FIT), _table(context, VALIDATION)
    report = {
        kind: recommender.evaluate(
            recommender.fit(fit_rows, kind, params["factors"], params["seed"]),
            fit_rows,
            validation,
            TOP_N,
        )
        for kind in params["candidates"]
    }
    metric = params["selection_metric"]
    sign = -1 if metric == "rmse" else 1
    chosen = max(report, key=lambda kind: sign * report[kind][metric]["mean"])
    context.log.info("validation: %s; chosen by %s: %s", report, metric, chosen)
    return {"candidates": report, "chosen": chosen, "selection_metric": metric}


def fit_chosen(context: StepContext, pipeline: TrainingPipeline, chosen: str) -> dict[str, Any]:
    _, params = pipeline.request_of(context.record)
    train, heldout = _table(context, TRAIN), _table(context, HELDOUT)
    model = recommender.fit(train, chosen, params["factors"], params["seed"])
    baseline = recommender.fit(train, "popularity", params["factors"], params["seed"])
    path = context.artifact_path(MODEL_FILE)
    model.save(path)
    if not context.storage.is_local:
        context.save_artifact(MODEL_FILE, path.read_bytes())
    scores = recommender.evaluate(model, train, heldout, TOP_N)
    baseline_scores = recommender.evaluate(baseline, train, heldout, TOP_N)
    baseline_scores["rmse"]["mean"] = recommender.global_mean_rmse(train, heldout)
    return {
        "heldout": {k: v["mean"] for k, v in scores.items()},
        "baseline": {k: v["mean"] for k, v in baseline_scores.items()},
    }


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
        artifacts={"model": MODEL_FILE, "train": TRAIN, "heldout": HELDOUT},
        features=["userId"],
        target="rating",
        candidate_prefix="val",
        evaluation="on a validation split, mean±std over users",
        baseline=fitted["baseline"],
    )
    return outcome.to_result()
