"""The recommender as an MLflow pyfunc model, and the flavor that logs and scores it."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from conveyor.pipelines.movies.recommender import Recommender, evaluate

if TYPE_CHECKING:
    from conveyor.models.registry import ModelRegistry
    from conveyor.models.training import TrainingOutcome

TOP_N = 20


class RecommenderModel(PythonModel):  # type: ignore[misc]
    """Input: a ``userId`` column; output: a ``movieIds`` column of the top 20 (unseen unknown
    here, so only training-time ratings are excluded by the caller's choice of model)."""

    def load_context(self, context: Any) -> None:
        self.recommender = Recommender.load(Path(context.artifacts["recommender"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        empty = np.array([], dtype=float)
        tops = [
            self.recommender.recommend(int(user), empty, TOP_N).astype(int).tolist()
            for user in model_input["userId"]
        ]
        return pd.DataFrame({"movieIds": [" ".join(map(str, top)) for top in tops]})


class RecommenderFlavor:
    def log(
        self,
        tracking: ModelRegistry,
        run_id: str,
        files: Mapping[str, Path],
        outcome: TrainingOutcome,
    ) -> str:
        model = RecommenderModel()
        model.recommender = Recommender.load(files["model"])
        example = pd.DataFrame({"userId": model.recommender.users[:3].astype(int)})
        return tracking.log_python_model(
            run_id,
            RecommenderModel(),
            {"recommender": str(files["model"])},
            example,
            model.predict(None, example),
            [f"{name}=={version(name)}" for name in ("numpy", "pandas", "scipy")],
        )

    def score(
        self,
        tracking: ModelRegistry,
        version_number: int,
        files: Mapping[str, Path],
        outcome: TrainingOutcome,
    ) -> dict[str, float]:
        champion = tracking.load_python_model(outcome.model, version_number).recommender
        train, heldout = pd.read_csv(files["train"]), pd.read_csv(files["heldout"])
        return {k: v["mean"] for k, v in evaluate(champion, train, heldout, TOP_N).items()}
