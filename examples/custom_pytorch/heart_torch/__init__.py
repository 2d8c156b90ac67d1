"""``heart_torch``: a user-defined PyTorch network trained, registered and served by Conveyor
like the built-in ``heart`` classifier (same data, same schema, another framework).

Installed with ``pip install examples/custom_pytorch``, it is found by its entry point:
``conveyor train heart_torch --wait`` trains it, the endpoint ``heart_torch`` serves its
champion through the network's ONNX export. See docs/custom-models.md.
"""

from __future__ import annotations

from typing import Any

from conveyor.errors import InputRejectedError
from conveyor.models.pytorch import TorchClassifierFlavor
from conveyor.models.training import TrainingPipeline
from conveyor.models.training_steps import training_steps
from conveyor.pipeline import StepContext, step
from conveyor.pipelines.heart.data import CLEVELAND_SOURCE, HEART_SCHEMA, cleveland_csv

STEP_TIMEOUT_SECONDS = 1800.0
METRICS = ("accuracy", "roc_auc", "f1", "brier")
DEFAULT_PARAMS: dict[str, Any] = {
    "seed": 42,
    "test_size": 0.2,
    "cv_folds": 3,
    "hidden": [8, 32],  # one candidate network per hidden-layer width
    "epochs": 300,
    "learning_rate": 0.01,
    "selection_metric": "roc_auc",
    "onnx_tolerance": 1e-4,
}


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    hidden = params["hidden"]
    if isinstance(hidden, str | int):
        hidden = [part for part in str(hidden).split(",") if part.strip()]
    checked = params | {
        "hidden": [int(width) for width in hidden],
        "seed": int(params["seed"]),
        "test_size": float(params["test_size"]),
        "cv_folds": int(params["cv_folds"]),
        "epochs": int(params["epochs"]),
        "learning_rate": float(params["learning_rate"]),
        "onnx_tolerance": float(params["onnx_tolerance"]),
    }
    if not checked["hidden"] or not all(1 <= width <= 1024 for width in checked["hidden"]):
        raise InputRejectedError("hidden must list layer widths between 1 and 1024.")
    if not 1 <= checked["epochs"] <= 10_000 or not 2 <= checked["cv_folds"] <= 20:
        raise InputRejectedError("epochs must be 1-10000 and cv_folds 2-20.")
    if not 0.05 <= checked["test_size"] <= 0.5 or checked["selection_metric"] not in METRICS:
        raise InputRejectedError(
            f"test_size must be 0.05-0.5 and selection_metric one of {', '.join(METRICS)}."
        )
    return checked


prepare, compare, fit = training_steps(
    "heart_torch.training", lambda: heart_torch, STEP_TIMEOUT_SECONDS
)


@step(retries=1, timeout_seconds=STEP_TIMEOUT_SECONDS)
def summarize(
    context: StepContext, prepare: dict[str, Any], compare: dict[str, Any], fit: dict[str, Any]
) -> dict[str, Any]:
    from heart_torch import training

    return training.summarize(context, heart_torch, prepare, compare, fit)


heart_torch = TrainingPipeline(
    "heart_torch",
    version="1",
    dag={prepare: [], compare: [prepare], fit: [compare], summarize: [prepare, compare, fit]},
    default_params=DEFAULT_PARAMS,
    default_dataset=cleveland_csv,
    default_dataset_source=CLEVELAND_SOURCE,
    check_params=check_params,
    schema=HEART_SCHEMA,
    flavor=TorchClassifierFlavor(),
    description="Heart-disease classifier as a PyTorch MLP: CV over widths, fit, ONNX.",
)
