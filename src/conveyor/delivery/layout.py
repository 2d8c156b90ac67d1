"""``conveyor-model.toml``: what a model repository asks of a delivery.

    [model]
    pipeline = "heart"              # the training pipeline (installed, or in CONVEYOR_PIPELINES)
    branch = "main"                 # the hook delivers pushes to this branch only
    dataset = "data/heart.csv"      # optional: a file of this repository, read at the commit

    [params]                        # the training pipeline's parameters
    candidates = ["logistic_regression"]

    [gate]                          # the evaluation gate, on the run's held-out rows
    metric = "roc_auc"
    minimum = 0.8                   # refuse a version below this
    margin = 0.0                    # refuse a version worse than the champion by more

    [canary]                        # leave out to promote as soon as the gate passes
    endpoint = "heart"
    weight = 10                     # percent of the endpoint's traffic
    metric = "accuracy"             # online metric from feedback: accuracy or ctr
    min_samples = 200               # labelled outcomes per arm before any decision
    confidence = 0.95
    max_minutes = 1440
    poll_seconds = 30

    [promotion]
    when = "better"                 # "better": the canary must win; "not_worse": must not lose
    on_timeout = "rollback"         # or "promote"

Parsing is pure: the text in, a :class:`DeliverySpec` out, or an error naming the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import InputRejectedError

LAYOUT_FILE = "conveyor-model.toml"
ONLINE_METRICS = ("accuracy", "ctr")
PROMOTE_WHEN = ("better", "not_worse")
ON_TIMEOUT = ("rollback", "promote")


class LayoutError(InputRejectedError):
    code = "invalid_model_layout"


@dataclass(frozen=True)
class GateSpec:
    metric: str | None = None  # None: the model's promotion metric
    minimum: float | None = None
    margin: float = 0.0


@dataclass(frozen=True)
class CanarySpec:
    endpoint: str
    weight: float = 10.0
    metric: str = "accuracy"
    min_samples: int = 200
    confidence: float = 0.95
    max_minutes: float = 1440.0
    poll_seconds: float = 30.0


@dataclass(frozen=True)
class PromotionSpec:
    when: str = "better"
    on_timeout: str = "rollback"


@dataclass(frozen=True)
class DeliverySpec:
    pipeline: str
    branch: str = "main"
    dataset: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    gate: GateSpec = GateSpec()
    canary: CanarySpec | None = None
    promotion: PromotionSpec = PromotionSpec()


def parse_layout(text: str) -> DeliverySpec:
    """Read ``conveyor-model.toml``; a missing or wrong key is a :class:`LayoutError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LayoutError(f"{LAYOUT_FILE} is not valid TOML: {error}") from error
    _known(data, "", {"model", "params", "gate", "canary", "promotion"})
    model = _table(data, "model")
    _known(model, "model.", {"pipeline", "branch", "dataset"})
    canary = _table(data, "canary") if "canary" in data else None
    return DeliverySpec(
        pipeline=_text(model, "model.pipeline"),
        branch=_text(model, "model.branch", "main"),
        dataset=_optional_text(model, "model.dataset"),
        params=dict(_table(data, "params")),
        gate=_gate(_table(data, "gate")),
        canary=_canary(canary) if canary is not None else None,
        promotion=_promotion(_table(data, "promotion")),
    )


def _gate(table: Mapping[str, Any]) -> GateSpec:
    _known(table, "gate.", {"metric", "minimum", "margin"})
    minimum = table.get("minimum")
    return GateSpec(
        metric=_optional_text(table, "gate.metric"),
        minimum=None if minimum is None else _number(table, "gate.minimum"),
        margin=_number(table, "gate.margin", 0.0, low=0.0),
    )


def _canary(table: Mapping[str, Any]) -> CanarySpec:
    keys = {"endpoint", "weight", "metric", "min_samples", "confidence", "max_minutes"}
    _known(table, "canary.", keys | {"poll_seconds"})
    metric = _text(table, "canary.metric", "accuracy")
    if metric not in ONLINE_METRICS:
        raise LayoutError(f"canary.metric must be one of {', '.join(ONLINE_METRICS)}")
    confidence = _number(table, "canary.confidence", 0.95, low=0.5)
    if confidence >= 1:
        raise LayoutError("canary.confidence must be below 1 (e.g. 0.95)")
    return CanarySpec(
        endpoint=_text(table, "canary.endpoint"),
        weight=_number(table, "canary.weight", 10.0, low=0.1, high=100.0),
        metric=metric,
        min_samples=int(_number(table, "canary.min_samples", 200, low=1)),
        confidence=confidence,
        max_minutes=_number(table, "canary.max_minutes", 1440.0, low=0.05),
        poll_seconds=_number(table, "canary.poll_seconds", 30.0, low=0.1),
    )


def _promotion(table: Mapping[str, Any]) -> PromotionSpec:
    _known(table, "promotion.", {"when", "on_timeout"})
    when = _text(table, "promotion.when", "better")
    on_timeout = _text(table, "promotion.on_timeout", "rollback")
    if when not in PROMOTE_WHEN:
        raise LayoutError(f"promotion.when must be one of {', '.join(PROMOTE_WHEN)}")
    if on_timeout not in ON_TIMEOUT:
        raise LayoutError(f"promotion.on_timeout must be one of {', '.join(ON_TIMEOUT)}")
    return PromotionSpec(when, on_timeout)


def _known(table: Mapping[str, Any], prefix: str, keys: set[str]) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise LayoutError(
            f"{LAYOUT_FILE}: unknown key(s) {', '.join(prefix + k for k in unknown)}; "
            f"known: {', '.join(prefix + k for k in sorted(keys))}"
        )


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise LayoutError(f"{LAYOUT_FILE}: [{key}] must be a table")
    return value


def _text(table: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = table.get(key.rpartition(".")[2], default)
    if not isinstance(value, str) or not value:
        raise LayoutError(f"{LAYOUT_FILE}: {key} must be a non-empty string")
    return value


def _optional_text(table: Mapping[str, Any], key: str) -> str | None:
    if key.rpartition(".")[2] not in table:
        return None
    return _text(table, key)


def _number(
    table: Mapping[str, Any],
    key: str,
    default: float | None = None,
    low: float | None = None,
    high: float | None = None,
) -> float:
    value = table.get(key.rpartition(".")[2], default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LayoutError(f"{LAYOUT_FILE}: {key} must be a number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise LayoutError(f"{LAYOUT_FILE}: {key} must be between {low} and {high}; got {value}")
    return float(value)
