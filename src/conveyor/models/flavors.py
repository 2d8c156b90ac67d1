"""How the control side logs a trained model to MLflow and scores a champion on new held-out
data: one flavor per kind of model, chosen by the training pipeline.

``files`` maps the outcome's artifact keys (``model``, ``heldout``, ...) to local copies of the
files the training steps wrote to the item's work folder.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from conveyor.models.registry import ModelRegistry
    from conveyor.models.training import TrainingOutcome


class ModelFlavor(Protocol):
    def log(
        self,
        tracking: ModelRegistry,
        run_id: str,
        files: Mapping[str, Path],
        outcome: TrainingOutcome,
    ) -> str:
        """Log the model (with a signature and an input example) to the run; its model URI."""
        ...

    def score(
        self,
        tracking: ModelRegistry,
        version: int,
        files: Mapping[str, Path],
        outcome: TrainingOutcome,
    ) -> dict[str, float]:
        """Metrics of registered ``version`` on this run's held-out data (names as in
        ``outcome.heldout``)."""
        ...


class DeferredFlavor:
    """The flavor ``module:Class``, imported only when the control side logs or scores a
    model: the module that names it (a pipeline's steps) loads on workers without MLflow."""

    def __init__(self, target: str) -> None:
        self.target = target

    def _flavor(self) -> ModelFlavor:
        module, _, name = self.target.partition(":")
        flavor: ModelFlavor = getattr(importlib.import_module(module), name)()
        return flavor

    def log(
        self,
        tracking: ModelRegistry,
        run_id: str,
        files: Mapping[str, Path],
        outcome: TrainingOutcome,
    ) -> str:
        return self._flavor().log(tracking, run_id, files, outcome)

    def score(
        self,
        tracking: ModelRegistry,
        version: int,
        files: Mapping[str, Path],
        outcome: TrainingOutcome,
    ) -> dict[str, float]:
        return self._flavor().score(tracking, version, files, outcome)


class SklearnClassifier:
    """A scikit-learn binary classifier saved with joblib; held-out rows in a CSV table."""

    def log(
        self,
        tracking: ModelRegistry,
        run_id: str,
        files: Mapping[str, Path],
        outcome: TrainingOutcome,
    ) -> str:
        import joblib

        native = joblib.load(files["model"])  # our own step's output, never a user's upload
        example = heldout_example(files, outcome)
        return tracking.log_sklearn_model(run_id, native, example, _requirements())

    def score(
        self,
        tracking: ModelRegistry,
        version: int,
        files: Mapping[str, Path],
        outcome: TrainingOutcome,
    ) -> dict[str, float]:
        return heldout_metrics(tracking.load_sklearn(outcome.model, version), files, outcome)


def heldout_example(files: Mapping[str, Path], outcome: TrainingOutcome) -> Any:
    """Five complete held-out rows of a binary classifier's features: its input example."""
    import pandas as pd

    heldout = pd.read_csv(files["heldout"], dtype=float)
    return heldout[outcome.features].dropna().head(5)


def heldout_metrics(
    model: Any, files: Mapping[str, Path], outcome: TrainingOutcome
) -> dict[str, float]:
    """A binary classifier's metrics on the run's held-out rows (a CSV table)."""
    import pandas as pd

    from conveyor.models.tabular import binary_target, evaluate

    heldout = pd.read_csv(files["heldout"], dtype=float)
    return evaluate(model, heldout[outcome.features], binary_target(heldout, outcome.target))


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("scikit-learn", "skops", "numpy", "pandas")]


def default_flavor() -> Any:
    return SklearnClassifier()
