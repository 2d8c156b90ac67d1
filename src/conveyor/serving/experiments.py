"""Experiments: a named period (start, end) on an endpoint with a metric; results per arm
with Wilson score intervals (the metrics are proportions: accuracy, click-through)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.errors import InputRejectedError, ItemNotFoundError
from conveyor.serving.quality import ACCURACY, CTR, Proportion, quality_by
from conveyor.serving.tables import ServingExperiment
from conveyor.store.models import utcnow

METRICS = (ACCURACY, CTR)
Z_95 = 1.959964


class ExperimentNotFoundError(ItemNotFoundError):
    http_status = 404


class InvalidExperimentError(InputRejectedError):
    code = "invalid_experiment"
    http_status = 422


@dataclass(frozen=True)
class ArmResult:
    arm: str
    successes: int
    trials: int
    value: float | None
    low: float | None  # 95 % Wilson interval
    high: float | None


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: sensible at 0, 1 and small samples."""
    if trials <= 0:
        raise ValueError("no trials")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def arm_results(by_arm: dict[Any, Proportion]) -> list[ArmResult]:
    results = []
    for arm in sorted(by_arm, key=str):
        counts = by_arm[arm]
        low, high = (
            wilson_interval(counts.successes, counts.trials) if counts.trials else (None, None)
        )
        results.append(
            ArmResult(str(arm), counts.successes, counts.trials, counts.value, low, high)
        )
    return results


def create_experiment(
    session: Session,
    endpoint: str,
    name: str,
    metric: str,
    starts_at: datetime | None,
    ends_at: datetime | None,
    actor: str,
) -> ServingExperiment:
    if metric not in METRICS:
        raise InvalidExperimentError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}.")
    starts_at = starts_at or utcnow()
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidExperimentError("ends_at must be after starts_at.")
    experiment = ServingExperiment(
        endpoint=endpoint,
        name=name,
        metric=metric,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=actor,
    )
    session.add(experiment)
    session.flush()
    return experiment


def get_experiment(session: Session, experiment_id: int) -> ServingExperiment:
    found = session.get(ServingExperiment, experiment_id)
    if found is None:
        raise ExperimentNotFoundError(f"no experiment {experiment_id}.")
    return found


def list_experiments(session: Session, endpoint: str | None = None) -> list[ServingExperiment]:
    query = select(ServingExperiment).order_by(ServingExperiment.id.desc())
    if endpoint is not None:
        query = query.where(ServingExperiment.endpoint == endpoint)
    return list(session.scalars(query))


def end_experiment(session: Session, experiment_id: int) -> ServingExperiment:
    experiment = get_experiment(session, experiment_id)
    now = utcnow()
    if experiment.ends_at is None or experiment.ends_at > now:
        experiment.ends_at = max(now, experiment.starts_at)
    return experiment


def experiment_results(session: Session, experiment: ServingExperiment) -> list[ArmResult]:
    by_arm = quality_by(
        session,
        experiment.endpoint,
        experiment.metric,
        experiment.starts_at,
        experiment.ends_at,
        group="arm",
    )
    return arm_results(by_arm)
