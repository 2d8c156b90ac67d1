"""The first three steps every training DAG shares: prepare -> compare -> fit.

Their bodies live in a training module (``prepare(context, pipeline)``,
``compare(context, pipeline)``, ``fit_chosen(context, pipeline, chosen)``) that is imported when
a step runs, so discovering the pipeline (every CLI command does) imports no ML library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from conveyor.pipeline import StepContext, step
from conveyor.pipeline.spec import Step

if TYPE_CHECKING:
    from conveyor.models.training import TrainingPipeline

DEFAULT_TIMEOUT_SECONDS = 1800.0  # a training step running longer than this is stuck


class TrainingSteps(NamedTuple):
    prepare: Step
    compare: Step
    fit: Step


def training_steps(
    training_module: str,
    pipeline: Callable[[], TrainingPipeline],
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> TrainingSteps:
    """The steps, calling ``training_module``'s functions with the pipeline that ``pipeline()``
    returns (a function, since the pipeline is built from these steps)."""

    def run(function: str, context: StepContext, *arguments: Any) -> dict[str, Any]:
        body = getattr(importlib.import_module(training_module), function)
        result: dict[str, Any] = body(context, pipeline(), *arguments)
        return result

    @step(name="prepare", timeout_seconds=timeout_seconds)
    def prepare(context: StepContext) -> dict[str, Any]:
        return run("prepare", context)

    @step(name="compare", retries=1, timeout_seconds=timeout_seconds)
    def compare(context: StepContext, prepare: dict[str, Any]) -> dict[str, Any]:
        return run("compare", context)

    @step(name="fit", retries=1, timeout_seconds=timeout_seconds)
    def fit(context: StepContext, compare: dict[str, Any]) -> dict[str, Any]:
        return run("fit_chosen", context, compare["chosen"])

    return TrainingSteps(prepare, compare, fit)
