"""How the control side logs a PyTorch classifier to MLflow and scores it as a champion.

The version is an MLflow ``python_function`` model whose artifact is the network's
``torch.export`` program (``models/pytorch.py``), with a signature naming every feature. Not
``mlflow.pytorch``: its safe ``pt2`` format takes only a tensor signature (no feature names, so
serving could not check each field of a request), and its other format pickles the network,
which runs code when loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from conveyor.models.flavors import heldout_example, heldout_metrics
from conveyor.models.pytorch import NetworkClassifier, load_program

if TYPE_CHECKING:
    from conveyor.models.registry import ModelRegistry
    from conveyor.models.training import TrainingOutcome

PROGRAM_ARTIFACT = "program"


class NetworkModel(PythonModel):  # type: ignore[misc]
    """Input: the feature columns; output: ``label`` and ``probability`` (of class 1 for two
    classes, else of the label), as the serving endpoints answer."""

    def load_context(self, context: Any) -> None:
        self.classifier = NetworkClassifier(load_program(Path(context.artifacts[PROGRAM_ARTIFACT])))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        probabilities = self.classifier.predict_proba(model_input.astype(float))
        labels = probabilities.argmax(axis=1)
        chosen = probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities.max(axis=1)
        return pd.DataFrame({"label": labels.astype(np.int64), "probability": chosen})


class TorchClassifier:
    """The flavor of a PyTorch classifier: ``files["model"]`` is the program saved by
    ``models.pytorch.save_program``, ``files["heldout"]`` the held-out rows (a CSV table)."""

    def log(
        self,
        tracking: ModelRegistry,
        run_id: str,
        files: Mapping[str, Path],
        outcome: TrainingOutcome,
    ) -> str:
        model = NetworkModel()
        model.classifier = NetworkClassifier(load_program(files["model"]))
        example = heldout_example(files, outcome)
        return tracking.log_python_model(
            run_id,
            NetworkModel(),
            {PROGRAM_ARTIFACT: str(files["model"])},
            example,
            model.predict(None, example),
            [f"{name}=={version(name)}" for name in ("torch", "numpy", "pandas")],
        )

    def score(
        self,
        tracking: ModelRegistry,
        version_number: int,
        files: Mapping[str, Path],
        outcome: TrainingOutcome,
    ) -> dict[str, float]:
        champion = tracking.load_python_model(outcome.model, version_number).classifier
        return heldout_metrics(champion, files, outcome)
