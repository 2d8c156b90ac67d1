"""Outcomes joined to predictions: a label for a prediction id, or watch/click events of a
user (recommendations: click-through is computed from them in ``quality.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from conveyor.errors import InputRejectedError, ItemNotFoundError
from conveyor.serving.tables import Prediction, PredictionFeedback
from conveyor.store.models import utcnow
from conveyor.streams.event_sinks import write_feedback

LABEL = "label"
EVENT_KINDS = ("watch", "click")


class PredictionNotFoundError(ItemNotFoundError):
    http_status = 404


class InvalidFeedbackError(InputRejectedError):
    code = "invalid_feedback"
    http_status = 422


def record_feedback(
    session: Session,
    prediction_id: str,
    label: Any = None,
    event: str | None = None,
    value: Any = None,
) -> dict[str, Any]:
    """Store a label (``label``) or an event (``event`` with the item ``value``) for one
    logged prediction; returns what was stored."""
    if (label is None) == (event is None):
        raise InvalidFeedbackError('send either "label" or "event" (watch or click).')
    if event is not None and event not in EVENT_KINDS:
        raise InvalidFeedbackError(f"event must be one of {', '.join(EVENT_KINDS)}.")
    found = session.execute(
        select(Prediction.endpoint, Prediction.request_key).where(Prediction.id == prediction_id)
    ).first()
    if found is None:
        raise PredictionNotFoundError(
            f"no logged prediction {prediction_id!r} (predictions are written within about a "
            "second of the answer; retry shortly if it was just made)."
        )
    row = {
        "endpoint": found.endpoint,
        "prediction_id": prediction_id,
        "kind": LABEL if event is None else event,
        "value": label if event is None else value,
        "request_key": found.request_key,
        "ts": utcnow(),
    }
    session.execute(insert(PredictionFeedback), [row])
    write_feedback(session, [row])  # the endpoint's prediction sinks, in this transaction
    return row


def record_events(session: Session, endpoint: str, events: list[tuple[str, int, str]]) -> int:
    """(user, item, kind) events not tied to one prediction id."""
    now = utcnow()
    rows = [
        {
            "endpoint": endpoint,
            "prediction_id": None,
            "kind": kind,
            "value": item,
            "request_key": user,
            "ts": now,
        }
        for user, item, kind in events
    ]
    if rows:
        session.execute(insert(PredictionFeedback), rows)
        write_feedback(session, rows)
    return len(rows)
