"""Experiment results per segment: the arms compared within groups of requests, split by a
request field (``sex``), or by a derived bucket of a numeric field (``age`` in bands at
``bins``), each arm with its Wilson interval.

The segment of a prediction comes from the features the prediction log kept for it
(:func:`segment_of`, pure); the counting is the experiment's own (accuracy or click-through).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.errors import InputRejectedError
from conveyor.serving.experiments import ArmResult, arm_results
from conveyor.serving.quality import (
    CTR,
    CTR_WINDOW,
    MAX_ROWS,
    accuracy_counts,
    click_through_counts,
)
from conveyor.serving.tables import Prediction, PredictionFeedback, ServingExperiment

MISSING = "missing"
OTHER = "other"
MAX_SEGMENTS = 50  # distinct values of a categorical field; the rest are "other"


class InvalidSegmentError(InputRejectedError):
    code = "invalid_segment"
    http_status = 422


@dataclass(frozen=True)
class Segmentation:
    field: str
    bins: tuple[float, ...] = ()  # ascending band edges of a numeric field; () = categorical

    def __post_init__(self) -> None:
        if list(self.bins) != sorted(set(self.bins)):
            raise InvalidSegmentError("bins must be distinct and ascending, e.g. 40,50,60.")


@dataclass(frozen=True)
class SegmentResult:
    segment: str
    arms: list[ArmResult]


def band_label(value: float, bins: Sequence[float]) -> str:
    """``<40``, ``40-50``, ``>=60`` for bins (40, 50, 60)."""
    index = bisect.bisect_right(bins, value)
    if index == 0:
        return f"<{bins[0]:g}"
    if index == len(bins):
        return f">={bins[-1]:g}"
    return f"{bins[index - 1]:g}-{bins[index]:g}"


def segment_of(features: Any, segmentation: Segmentation) -> str:
    record = features[0] if isinstance(features, list) and features else features
    value = record.get(segmentation.field) if isinstance(record, dict) else None
    if value is None:
        return MISSING
    if not segmentation.bins:
        return str(value)
    try:
        return band_label(float(value), segmentation.bins)
    except (TypeError, ValueError):
        return MISSING


def _cap_segments(counts: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
    segments = sorted({segment for segment, _ in counts})
    if len(segments) <= MAX_SEGMENTS:
        return counts
    kept = set(segments[: MAX_SEGMENTS - 1])
    merged: dict[tuple[str, str], Any] = {}
    for (segment, arm), proportion in counts.items():
        key = (segment if segment in kept else OTHER, arm)
        if key in merged:
            before = merged[key]
            proportion = type(proportion)(
                before.successes + proportion.successes, before.trials + proportion.trials
            )
        merged[key] = proportion
    return merged


def segment_results(
    session: Session, experiment: ServingExperiment, segmentation: Segmentation
) -> list[SegmentResult]:
    """Per segment (sorted), the experiment's arm results with 95% Wilson intervals."""
    if experiment.metric == CTR:
        counts = _click_through(session, experiment, segmentation)
    else:
        counts = _accuracy(session, experiment, segmentation)
    by_segment: dict[str, dict[str, Any]] = {}
    for (segment, arm), proportion in _cap_segments(counts).items():
        by_segment.setdefault(segment, {})[arm] = proportion
    return [SegmentResult(s, arm_results(by_segment[s])) for s in sorted(by_segment)]


def _window(query: Any, experiment: ServingExperiment) -> Any:
    query = query.where(Prediction.endpoint == experiment.endpoint)
    query = query.where(Prediction.ts >= experiment.starts_at)
    if experiment.ends_at is not None:
        query = query.where(Prediction.ts < experiment.ends_at)
    return query


def _accuracy(
    session: Session, experiment: ServingExperiment, segmentation: Segmentation
) -> dict[tuple[str, str], Any]:
    query = (
        select(
            Prediction.id,
            Prediction.arm,
            Prediction.features,
            Prediction.output,
            PredictionFeedback.value,
        )
        .join(PredictionFeedback, PredictionFeedback.prediction_id == Prediction.id)
        .where(PredictionFeedback.kind == "label")
        .order_by(PredictionFeedback.id)
        .limit(MAX_ROWS)
    )
    latest: dict[str, tuple[Any, Any, Any]] = {}
    for prediction_id, arm, features, output, label in session.execute(_window(query, experiment)):
        latest[prediction_id] = ((segment_of(features, segmentation), arm), output, label)
    return accuracy_counts(latest.values())


def _click_through(
    session: Session, experiment: ServingExperiment, segmentation: Segmentation
) -> dict[tuple[str, str], Any]:
    query = (
        select(
            Prediction.arm,
            Prediction.features,
            Prediction.request_key,
            Prediction.ts,
            Prediction.output,
        )
        .where(Prediction.error.is_(None))
        .order_by(Prediction.ts.desc())
        .limit(MAX_ROWS)
    )
    responses = [
        ((segment_of(features, segmentation), arm), key, ts, output)
        for arm, features, key, ts, output in session.execute(_window(query, experiment))
    ]
    if not responses:
        return {}
    events = session.execute(
        select(PredictionFeedback.request_key, PredictionFeedback.ts, PredictionFeedback.value)
        .where(
            PredictionFeedback.endpoint == experiment.endpoint,
            PredictionFeedback.kind.in_(("watch", "click")),
            PredictionFeedback.ts >= experiment.starts_at,
        )
        .limit(MAX_ROWS)
    ).all()
    return click_through_counts(responses, [tuple(e) for e in events], CTR_WINDOW)
