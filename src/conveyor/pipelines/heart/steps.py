"""The heart training DAG: prepare -> compare -> fit -> export_onnx -> summarize.

Step bodies live in :mod:`conveyor.pipelines.heart.training` and are imported when a step runs,
so discovering this pipeline (every CLI command does) does not import scikit-learn.
"""

from __future__ import annotations

from typing import Any

from conveyor.errors import InputRejectedError
from conveyor.models.training import TrainingPipeline
from conveyor.models.training_steps import training_steps
from conveyor.pipeline import StepContext, step
from conveyor.pipelines.heart.data import CLEVELAND_SOURCE, HEART_SCHEMA, cleveland_csv

TRAINING_STEP_TIMEOUT_SECONDS = 1800.0  # a training step running longer than this is stuck

CANDIDATE_NAMES = ("logistic_regression", "svm", "gradient_boosting", "baseline")
METRIC_NAMES = ("accuracy", "roc_auc", "f1", "brier")
DEFAULT_PARAMS: dict[str, Any] = {
    "seed": 42,
    "test_size": 0.2,
    "cv_folds": 5,
    "candidates": ["logistic_regression", "svm", "gradient_boosting"],
    "selection_metric": "roc_auc",
    "onnx_tolerance": 1e-4,
}


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """Normalise and check heart parameters (``candidates`` may be "a,b" on the command line)."""
    candidates = params["candidates"]
    if isinstance(candidates, str):
        candidates = [name.strip() for name in candidates.split(",") if name.strip()]
    unknown = [name for name in candidates if name not in CANDIDATE_NAMES]
    if not candidates or unknown:
        raise InputRejectedError(
            f"candidates must name some of {', '.join(CANDIDATE_NAMES)}; got {candidates!r}."
        )
    if params["selection_metric"] not in METRIC_NAMES:
        raise InputRejectedError(f"selection_metric must be one of {', '.join(METRIC_NAMES)}.")
    checked = params | {
        "candidates": list(candidates),
        "seed": _number(params, "seed", int),
        "test_size": _number(params, "test_size", float),
        "cv_folds": _number(params, "cv_folds", int),
        "onnx_tolerance": _number(params, "onnx_tolerance", float),
    }
    if not 0.05 <= checked["test_size"] <= 0.5:
        raise InputRejectedError("test_size must be between 0.05 and 0.5.")
    if not 2 <= checked["cv_folds"] <= 20:
        raise InputRejectedError("cv_folds must be between 2 and 20.")
    return checked


def _number(params: dict[str, Any], name: str, kind: type) -> Any:
    try:
        return kind(params[name])
    except (TypeError, ValueError):
        raise InputRejectedError(
            f"{name} must be a{'n integer' if kind is int else ' number'}, not {params[name]!r}."
        ) from None


prepare, compare, fit = training_steps(
    "conveyor.pipelines.heart.training", lambda: heart, TRAINING_STEP_TIMEOUT_SECONDS
)


@step(timeout_seconds=TRAINING_STEP_TIMEOUT_SECONDS)
def export_onnx(context: StepContext, fit: dict[str, Any]) -> dict[str, Any]:
    from conveyor.pipelines.heart import training

    return training.export_onnx(context, heart)


@step(retries=1, timeout_seconds=TRAINING_STEP_TIMEOUT_SECONDS)
def summarize(
    context: StepContext,
    prepare: dict[str, Any],
    compare: dict[str, Any],
    fit: dict[str, Any],
    export_onnx: dict[str, Any],
) -> dict[str, Any]:
    from conveyor.pipelines.heart import training

    return training.summarize(context, heart, prepare, compare, fit, export_onnx)


heart = TrainingPipeline(
    "heart",
    version="1",
    dag={
        prepare: [],
        compare: [prepare],
        fit: [compare],
        export_onnx: [fit],
        summarize: [prepare, compare, fit, export_onnx],
    },
    default_params=DEFAULT_PARAMS,
    default_dataset=cleveland_csv,
    default_dataset_source=CLEVELAND_SOURCE,
    check_params=check_params,
    schema=HEART_SCHEMA,
    description="Heart-disease classifier: validate, compare LR/SVM/GB by CV, fit, ONNX.",
)
