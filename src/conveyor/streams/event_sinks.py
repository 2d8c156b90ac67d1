"""Outbox rows of the sinks that publish something other than items' results: model events
(a new version, a promotion, a challenger, a rollback, a canary's automatic rollback),
prediction-log rows with their feedback (feature capture, labels), and alerts that fire or
resolve. Each writer runs in the caller's transaction, the one that records the event, commits
the prediction log or stores the feedback, so a message exists exactly when what it reports
does; the relay (:mod:`conveyor.streams.relay`) publishes them like items' results.

A sink says what it publishes in ``stream_sinks.statuses`` (``["model_events"]``,
``["predictions"]`` or ``["alerts"]``, beside the item statuses of a result sink) and names its
model, endpoint or alert (``*``: every one) in ``stream_sinks.pipeline``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from conveyor.store.models import utcnow
from conveyor.streams.tables import StreamOutboxRow, StreamSink

MODEL_EVENTS = "model_events"
PREDICTIONS = "predictions"
ALERTS = "alerts"
EVERY_SUBJECT = "*"  # a sink of every model, endpoint or alert
NEW_VERSION = "new_version"  # beside the alias actions: promote, challenge, rollback
CANARY_ROLLBACK = "canary_rollback"  # serving's guard took a canary arm's traffic away


def _sinks(session: Session, kind: str, subjects: Iterable[str]) -> list[tuple[str, str]]:
    """(sink, subject) of the sinks of ``kind`` that name one of ``subjects``."""
    query = select(StreamSink.name, StreamSink.pipeline, StreamSink.statuses).where(
        StreamSink.pipeline.in_(list(subjects))
    )
    return [(name, subject) for name, subject, kinds in session.execute(query) if kind in kinds]


def write_model_event(session: Session, model: str, event: Mapping[str, Any]) -> None:
    """One outbox row per model-event sink of ``model`` (or of every model). ``event`` holds
    ``event`` (its type) and what it reports; the message adds an ``event_id``, its key."""
    _write_event(session, MODEL_EVENTS, model, "event_id", {"model": model, **event})


def write_alert_change(session: Session, name: str, change: Mapping[str, Any]) -> None:
    """One outbox row per alert sink of the alert ``name`` (or of every alert) for a change
    of its state (it started firing, or resolved); the key is a fresh ``alert_event_id``."""
    _write_event(session, ALERTS, name, "alert_event_id", {"type": "alert", **change})


def _write_event(
    session: Session, kind: str, subject: str, id_field: str, fields: Mapping[str, Any]
) -> None:
    sinks = _sinks(session, kind, (subject, EVERY_SUBJECT))
    if not sinks:
        return
    now = utcnow()
    event_id = uuid.uuid4().hex
    body = {id_field: event_id, **fields, "at": now.isoformat() + "Z"}
    payload = json.dumps(body, default=_plain).encode()
    rows = [
        {"sink": sink, "item_id": event_id, "payload": payload, "created_at": now}
        for sink, _ in sinks
    ]
    session.execute(insert(StreamOutboxRow), rows)


def write_predictions(session: Session, predictions: Sequence[Mapping[str, Any]]) -> None:
    """One outbox row per prediction-log row and prediction sink of its endpoint: the
    request's features and answer, keyed by the prediction id."""
    sinks = _sinks(session, PREDICTIONS, {row["endpoint"] for row in predictions} | {EVERY_SUBJECT})
    if not sinks:
        return
    now = utcnow()
    rows = [
        {
            "sink": sink,
            "item_id": row["id"],
            "payload": prediction_message(row),
            "created_at": now,
        }
        for row in predictions
        for sink, endpoint in sinks
        if endpoint in (row["endpoint"], EVERY_SUBJECT)
    ]
    session.execute(insert(StreamOutboxRow), rows)


def write_feedback(session: Session, feedback: Sequence[Mapping[str, Any]]) -> None:
    """One outbox row per feedback row (a label, a watch or click event) and prediction sink
    of its endpoint, keyed by a fresh feedback id."""
    sinks = _sinks(session, PREDICTIONS, {row["endpoint"] for row in feedback} | {EVERY_SUBJECT})
    if not sinks:
        return
    now = utcnow()
    rows = []
    for row in feedback:
        feedback_id = uuid.uuid4().hex
        payload = feedback_message(feedback_id, row)
        rows += [
            {"sink": sink, "item_id": feedback_id, "payload": payload, "created_at": now}
            for sink, endpoint in sinks
            if endpoint in (row["endpoint"], EVERY_SUBJECT)
        ]
    session.execute(insert(StreamOutboxRow), rows)


def feedback_message(feedback_id: str, row: Mapping[str, Any]) -> bytes:
    ts: datetime = row["ts"]
    body = {
        "type": "feedback",
        "feedback_id": feedback_id,
        "endpoint": row["endpoint"],
        "prediction_id": row.get("prediction_id"),
        "kind": row["kind"],
        "value": row.get("value"),
        "request_key": row.get("request_key"),
        "ts": ts.isoformat() + "Z",
    }
    return json.dumps(body, default=_plain).encode()


def prediction_message(row: Mapping[str, Any]) -> bytes:
    ts: datetime = row["ts"]
    body = {
        "type": "prediction",
        "prediction_id": row["id"],
        "endpoint": row["endpoint"],
        "model": row["model"],
        "version": row["version"],
        "arm": row["arm"],
        "ts": ts.isoformat() + "Z",
        "request_key": row.get("request_key"),
        "features": row.get("features"),
        "output": row.get("output"),
        "error": row.get("error"),
        "latency_ms": row.get("latency_ms"),
        "dataset_sha256": row.get("dataset_sha256"),
    }
    return json.dumps(body, default=_plain).encode()


def _plain(value: Any) -> str:
    """Times as ISO 8601 UTC (the store's are naive UTC), anything else as its text."""
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    return str(value)
