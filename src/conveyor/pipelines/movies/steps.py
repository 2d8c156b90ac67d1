"""The movies training DAG: prepare -> compare -> fit -> summarize.

Step bodies live in :mod:`conveyor.pipelines.movies.training` and the MLflow flavor in
:mod:`conveyor.pipelines.movies.serving`; both are imported only when used, so discovering
this pipeline stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.errors import InputRejectedError
from conveyor.models.flavors import DeferredFlavor
from conveyor.models.training import TrainingPipeline
from conveyor.models.training_steps import training_steps
from conveyor.pipeline import PipelineHooks, ServingDefaults, StepContext, step
from conveyor.pipelines.movies.data import MOVIELENS_SOURCE, RATINGS_SCHEMA, movielens_csv

if TYPE_CHECKING:
    pass

TRAINING_STEP_TIMEOUT_SECONDS = 1800.0  # a training step running longer than this is stuck

KINDS = ("popularity", "svd")
DEFAULT_PARAMS: dict[str, Any] = {
    "seed": 42,
    "test_fraction": 0.2,
    "factors": 20,
    "candidates": list(KINDS),
    "selection_metric": "precision_at_20",
}


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    candidates = params["candidates"]
    if isinstance(candidates, str):
        candidates = [name.strip() for name in candidates.split(",") if name.strip()]
    if not candidates or any(name not in KINDS for name in candidates):
        raise InputRejectedError(f"candidates must name some of {', '.join(KINDS)}.")
    if params["selection_metric"] not in ("precision_at_20", "recall_at_20", "rmse"):
        raise InputRejectedError("selection_metric must be precision_at_20, recall_at_20 or rmse.")
    try:
        checked = params | {
            "candidates": list(candidates),
            "seed": int(params["seed"]),
            "factors": int(params["factors"]),
            "test_fraction": float(params["test_fraction"]),
        }
    except (TypeError, ValueError) as error:
        raise InputRejectedError(
            f"seed, factors and test_fraction must be numbers ({error})."
        ) from None
    if not 0.05 <= checked["test_fraction"] <= 0.5 or not 1 <= checked["factors"] <= 500:
        raise InputRejectedError("test_fraction must be 0.05-0.5 and factors 1-500.")
    return checked


prepare, compare, fit = training_steps(
    "conveyor.pipelines.movies.training", lambda: movies, TRAINING_STEP_TIMEOUT_SECONDS
)


@step(retries=1, timeout_seconds=TRAINING_STEP_TIMEOUT_SECONDS)
def summarize(
    context: StepContext, prepare: dict[str, Any], compare: dict[str, Any], fit: dict[str, Any]
) -> dict[str, Any]:
    from conveyor.pipelines.movies import training

    return training.summarize(context, movies, prepare, compare, fit)


movies = TrainingPipeline(
    "movies",
    version="1",
    dag={prepare: [], compare: [prepare], fit: [compare], summarize: [prepare, compare, fit]},
    default_params=DEFAULT_PARAMS,
    default_dataset=movielens_csv,
    default_dataset_source=MOVIELENS_SOURCE,
    description="Movie recommender: truncated SVD vs a popularity baseline, precision/recall@20.",
    check_params=check_params,
    schema=RATINGS_SCHEMA,
    flavor=DeferredFlavor("conveyor.pipelines.movies.serving:RecommenderFlavor"),
    promotion_metric="precision_at_20",
    hooks=PipelineHooks(
        api_routes="conveyor.pipelines.movies.api:router",
        # Recommendations are per user, which click-through needs as the request key.
        serving=ServingDefaults(key_field="userId", quality="ctr"),
    ),
)
