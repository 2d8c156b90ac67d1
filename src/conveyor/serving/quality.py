"""Online quality from the prediction log and feedback, per endpoint and version (or arm).

Accuracy: share of labelled predictions whose predicted label equals the label (the latest
label of a prediction counts). Click-through (recommendations): share of recommendation
responses whose user watched or clicked one of the recommended movies within ``window``
after the response. The counting is pure (:func:`accuracy_counts`,
:func:`click_through_counts`); the queries only fetch rows.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.pipeline import hooks
from conveyor.serving.tables import Prediction, PredictionFeedback

CTR_WINDOW = timedelta(hours=1)
MAX_ROWS = 200_000
# The metric names pipelines choose from in their serving defaults (PipelineHooks.serving).
ACCURACY, CTR = hooks.ACCURACY, hooks.CLICK_THROUGH


@dataclass(frozen=True)
class Proportion:
    successes: int
    trials: int

    @property
    def value(self) -> float | None:
        return self.successes / self.trials if self.trials else None


def accuracy_counts(rows: Iterable[tuple[Any, Any, Any]]) -> dict[Any, Proportion]:
    """``rows``: (group, predicted output, label) for labelled predictions."""
    hits: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for group, output, label in rows:
        predicted = output.get("label") if isinstance(output, dict) else output
        counts = hits[group]
        counts[0] += int(_same(predicted, label))
        counts[1] += 1
    return {group: Proportion(s, t) for group, (s, t) in hits.items()}


def _same(predicted: Any, label: Any) -> bool:
    try:
        return float(predicted) == float(label)
    except (TypeError, ValueError):
        return predicted == label


def click_through_counts(
    responses: Iterable[tuple[Any, str | None, datetime, Any]],
    events: Iterable[tuple[str, datetime, Any]],
    window: timedelta = CTR_WINDOW,
) -> dict[Any, Proportion]:
    """``responses``: (group, user, time, output with ``movieIds``); ``events``: (user, time,
    movie id). A response counts as clicked when its user watched one of its movies within
    ``window`` after it."""
    by_user: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for watcher, moment, movie in events:
        by_user[watcher].append((moment, _movie(movie)))
    for times in by_user.values():
        times.sort()
    counts: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for group, user, moment, output in responses:
        counts[group][1] += 1
        if user is not None and _clicked(by_user.get(user, []), moment, window, output):
            counts[group][0] += 1
    return {group: Proportion(s, t) for group, (s, t) in counts.items()}


def _clicked(
    events: list[tuple[datetime, int]], moment: datetime, window: timedelta, output: Any
) -> bool:
    recommended = set(recommended_movies(output))
    start = bisect.bisect_left(events, (moment, -(2**62)))
    for when, movie in events[start:]:
        if when > moment + window:
            return False
        if movie in recommended:
            return True
    return False


def recommended_movies(output: Any) -> list[int]:
    text = output.get("movieIds", "") if isinstance(output, dict) else output
    if isinstance(text, list):
        return [_movie(m) for m in text]
    return [_movie(m) for m in str(text).replace(",", " ").split()]


def _movie(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def accuracy_by(
    session: Session, endpoint: str, since: datetime, until: datetime | None, group: str
) -> dict[Any, Proportion]:
    """Accuracy per ``group`` of predictions made in [since, until)."""
    columns = _group_columns(group)
    query = (
        select(*columns, Prediction.output, PredictionFeedback.value, PredictionFeedback.id)
        .join(PredictionFeedback, PredictionFeedback.prediction_id == Prediction.id)
        .where(
            Prediction.endpoint == endpoint,
            Prediction.ts >= since,
            PredictionFeedback.kind == "label",
        )
        .order_by(PredictionFeedback.id)
        .limit(MAX_ROWS)
    )
    if until is not None:
        query = query.where(Prediction.ts < until)
    return accuracy_counts(_latest_labels(session, query, len(columns)))


def _latest_labels(session: Session, query: Any, width: int) -> list[tuple[Any, Any, Any]]:
    rows = session.execute(query.add_columns(Prediction.id)).all()
    latest: dict[str, tuple[Any, Any, Any]] = {}
    for row in rows:
        output, label, prediction_id = row[width], row[width + 1], row[width + 3]
        latest[prediction_id] = (_group_key(row[:width]), output, label)  # last label wins
    return list(latest.values())


def _group_columns(group: str) -> list[Any]:
    """``version``, ``arm``, or ``version_hour`` (version and the hour of the prediction)."""
    if group == "version_hour":
        return [Prediction.version, Prediction.ts]
    return [getattr(Prediction, group)]


def _group_key(values: Any) -> Any:
    if len(values) == 1:
        return values[0]
    version, moment = values
    return version, moment.replace(minute=0, second=0, microsecond=0)


def click_through_by(
    session: Session,
    endpoint: str,
    since: datetime,
    until: datetime | None,
    group: str,
    window: timedelta = CTR_WINDOW,
) -> dict[Any, Proportion]:
    columns = _group_columns(group)
    query = (
        select(*columns, Prediction.request_key, Prediction.ts, Prediction.output)
        .where(Prediction.endpoint == endpoint, Prediction.ts >= since, Prediction.error.is_(None))
        .order_by(Prediction.ts.desc())
        .limit(MAX_ROWS)
    )
    if until is not None:
        query = query.where(Prediction.ts < until)
    responses = session.execute(query).all()
    if not responses:
        return {}
    events = session.execute(
        select(PredictionFeedback.request_key, PredictionFeedback.ts, PredictionFeedback.value)
        .where(
            PredictionFeedback.endpoint == endpoint,
            PredictionFeedback.kind.in_(("watch", "click")),
            PredictionFeedback.ts >= since,
        )
        .limit(MAX_ROWS)
    ).all()
    width = len(columns)
    keyed = [(_group_key(r[:width]), *r[width:]) for r in responses]
    return click_through_counts(keyed, [tuple(e) for e in events], window)


def quality_by(
    session: Session,
    endpoint: str,
    metric: str,
    since: datetime,
    until: datetime | None = None,
    group: str = "version",
) -> dict[Any, Proportion]:
    if metric == CTR:
        return click_through_by(session, endpoint, since, until, group)
    return accuracy_by(session, endpoint, since, until, group)
