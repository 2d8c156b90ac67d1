"""Binary classification of tables with scikit-learn: candidates, cross-validation, metrics.

Every candidate is a scikit-learn ``Pipeline`` (impute, scale or one-hot encode, classify) over
the schema's feature columns by position, so it takes a float DataFrame or array with the
features in schema order and converts to ONNX as one float tensor. Tree models see unscaled
values: float32 rounding of scaled values in ONNX would flip splits that float64 does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_validate, train_test_split
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from conveyor.models.schema import DatasetError, TableSchema

# metric name -> (scikit-learn scorer, True when higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "accuracy": ("accuracy", True),
    "roc_auc": ("roc_auc", True),
    "f1": ("f1", True),
    "brier": ("neg_brier_score", False),  # calibration: mean squared error of probabilities
}


def higher_is_better(metric: str) -> bool:
    return METRICS[metric][1]


@dataclass(frozen=True)
class Family:
    """One kind of classifier; ``scaled`` says whether numeric features are standardised."""

    build: Callable[[int], Any]
    scaled: bool = True


FAMILIES: dict[str, Family] = {
    "logistic_regression": Family(lambda seed: LogisticRegression(C=1.0, max_iter=2000)),
    # Platt scaling on the SVM's decision values gives probabilities (ROC AUC, Brier score).
    "svm": Family(
        lambda seed: CalibratedClassifierCV(SVC(C=1.0, kernel="rbf"), ensemble=False, cv=5)
    ),
    "gradient_boosting": Family(
        lambda seed: GradientBoostingClassifier(
            n_estimators=100, max_depth=2, learning_rate=0.05, random_state=seed
        ),
        scaled=False,
    ),
    # Predicts the class prior: a floor every real candidate must beat.
    "baseline": Family(lambda seed: DummyClassifier(strategy="prior"), scaled=False),
}


def build_candidate(name: str, schema: TableSchema, seed: int) -> SkPipeline:
    try:
        family = FAMILIES[name]
    except KeyError:
        known = ", ".join(FAMILIES)
        raise DatasetError(f"unknown candidate {name!r}; choose from {known}.") from None
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if family.scaled:
        numeric_steps.append(("scale", StandardScaler()))
    categorical = SkPipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    preprocess = ColumnTransformer(
        [
            ("numeric", SkPipeline(numeric_steps), schema.feature_indices("numeric")),
            ("categorical", categorical, schema.feature_indices("categorical")),
            ("binary", SimpleImputer(strategy="most_frequent"), schema.feature_indices("binary")),
        ]
    )
    return SkPipeline([("preprocess", preprocess), ("classifier", family.build(seed))])


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    heldout: pd.DataFrame


def binary_target(table: pd.DataFrame, target: str) -> pd.Series:
    """Target > 0 is the positive class (e.g. heart disease grades 1-4)."""
    return (table[target] > 0).astype(int)


def stratified_split(
    table: pd.DataFrame, schema: TableSchema, test_size: float, seed: int, cv_folds: int
) -> Split:
    labels = binary_target(table, schema.target)
    smallest = int(labels.value_counts().min()) if labels.nunique() == 2 else 0
    needed = int(np.ceil(cv_folds / (1 - test_size))) + 1
    if smallest < needed:
        raise DatasetError(
            f"{schema.name} training data needs at least {needed} rows of each class for a "
            f"{cv_folds}-fold cross-validation after holding out {test_size:.0%}; the smaller "
            f"class has {smallest}. Add rows or lower cv_folds/test_size."
        )
    train, heldout = train_test_split(
        table, test_size=test_size, stratify=labels, random_state=seed
    )
    return Split(train.reset_index(drop=True), heldout.reset_index(drop=True))


def cross_validate_candidates(
    train: pd.DataFrame, schema: TableSchema, names: Sequence[str], folds: int, seed: int
) -> dict[str, dict[str, dict[str, float]]]:
    """{candidate: {metric: {"mean", "std"}}} from stratified k-fold cross-validation."""
    features, labels = train[schema.features], binary_target(train, schema.target)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scoring = {metric: scorer for metric, (scorer, _) in METRICS.items()}
    report = {}
    for name in names:
        scores = cross_validate(
            build_candidate(name, schema, seed), features, labels, cv=splitter, scoring=scoring
        )
        report[name] = {metric: _summary(metric, scores[f"test_{metric}"]) for metric in METRICS}
    return report


def _summary(metric: str, values: np.ndarray) -> dict[str, float]:
    values = values if higher_is_better(metric) else -values  # scikit-learn negates losses
    return {"mean": round(float(values.mean()), 6), "std": round(float(values.std()), 6)}


def best_candidate(report: Mapping[str, Mapping[str, Mapping[str, float]]], metric: str) -> str:
    sign = 1 if higher_is_better(metric) else -1
    return max(report, key=lambda name: sign * report[name][metric]["mean"])


def fit(train: pd.DataFrame, schema: TableSchema, name: str, seed: int) -> SkPipeline:
    model = build_candidate(name, schema, seed)
    return model.fit(train[schema.features], binary_target(train, schema.target))


def evaluate(model: Any, features: pd.DataFrame, labels: pd.Series) -> dict[str, float]:
    """Accuracy, ROC AUC, F1 and Brier score of ``model`` on held-out rows."""
    probabilities = model.predict_proba(features)[:, 1]
    predicted = model.predict(features)
    return {
        "accuracy": round(float(accuracy_score(labels, predicted)), 6),
        "roc_auc": round(float(roc_auc_score(labels, probabilities)), 6),
        "f1": round(float(f1_score(labels, predicted, zero_division=0)), 6),
        "brier": round(float(brier_score_loss(labels, probabilities)), 6),
    }
