"""Alerts delivered by Alertmanager's webhook to Conveyor: what changed, kept with history.

Alertmanager sends a group of alerts per notification (webhook payload version 4), again at
every ``group_interval`` while the group changes and every ``repeat_interval`` while it does
not. Only changes of state become history: an alert that starts firing, or resolves. The
decision is a pure function (:func:`next_state`); :func:`record_notification` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.monitoring.tables import Alert, AlertEvent
from conveyor.store.models import utcnow
from conveyor.streams.event_sinks import write_alert_change

FIRING, RESOLVED = "firing", "resolved"
# Alertmanager's "zero" endsAt of a firing alert.
_NO_END = datetime(1, 1, 1)


@dataclass(frozen=True)
class Notice:
    """One alert of a notification, as Alertmanager sent it (times naive UTC)."""

    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None = None


@dataclass(frozen=True)
class Known:
    """What the store holds about an alert."""

    status: str
    starts_at: datetime
    ends_at: datetime | None


def naive_utc(moment: datetime | None) -> datetime | None:
    """UTC without tzinfo (the store's convention); None for Alertmanager's zero time."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return None if moment <= _NO_END else moment


def next_state(known: Known | None, notice: Notice) -> str | None:
    """The status to record for ``notice`` (a new history entry), or None when nothing changed
    or the notice is older than what is known (a late retry of a firing alert that resolved)."""
    if known is None:
        return notice.status
    if notice.starts_at > known.starts_at:
        return notice.status  # the same labels fired again: a new episode
    if notice.starts_at < known.starts_at or notice.status == known.status:
        return None
    if notice.status == FIRING:
        return None  # resolved stays resolved until a new episode starts
    return RESOLVED


def record_notification(
    session: Session, notices: list[Notice], receiver: str | None
) -> list[tuple[str, str]]:
    """Store the alerts of one notification; returns (fingerprint, status) of the changes."""
    now = utcnow()
    changes = []
    for notice in notices:
        row = session.get(Alert, notice.fingerprint)
        known = None if row is None else Known(row.status, row.starts_at, row.ends_at)
        status = next_state(known, notice)
        if row is None:
            row = Alert(fingerprint=notice.fingerprint, first_received_at=now)
            session.add(row)
        row.last_received_at = now
        if status is None:
            continue
        _update(row, notice, status, receiver)
        session.add(
            AlertEvent(
                fingerprint=notice.fingerprint,
                status=status,
                starts_at=notice.starts_at,
                ends_at=notice.ends_at if status == RESOLVED else None,
                received_at=now,
            )
        )
        write_alert_change(session, row.name, _change(notice, status, now))  # stream sinks
        changes.append((notice.fingerprint, status))
    return changes


def _change(notice: Notice, status: str, received_at: datetime) -> dict[str, Any]:
    return {
        "fingerprint": notice.fingerprint,
        "name": notice.labels.get("alertname", "unnamed"),
        "status": status,
        "severity": notice.labels.get("severity"),
        "component": notice.labels.get("component"),
        "labels": notice.labels,
        "annotations": notice.annotations,
        "starts_at": notice.starts_at,
        "ends_at": notice.ends_at if status == RESOLVED else None,
        "generator_url": notice.generator_url,
        "received_at": received_at,
    }


def _update(row: Alert, notice: Notice, status: str, receiver: str | None) -> None:
    row.name = notice.labels.get("alertname", "unnamed")
    row.status = status
    row.severity = notice.labels.get("severity")
    row.component = notice.labels.get("component")
    row.labels = notice.labels
    row.annotations = notice.annotations
    row.starts_at = notice.starts_at
    row.ends_at = notice.ends_at if status == RESOLVED else None
    row.generator_url = notice.generator_url
    row.receiver = receiver


def list_alerts(session: Session, status: str | None = None, limit: int = 200) -> list[Alert]:
    """Alerts, firing first, most recently received first."""
    query = select(Alert).order_by(Alert.status, Alert.last_received_at.desc()).limit(limit)
    if status is not None:
        query = query.where(Alert.status == status)
    return list(session.scalars(query))


def alert_history(session: Session, limit: int = 200) -> list[tuple[AlertEvent, Alert]]:
    """The latest state changes of all alerts, newest first, with their alert."""
    query = (
        select(AlertEvent, Alert)
        .join(Alert, Alert.fingerprint == AlertEvent.fingerprint)
        .order_by(AlertEvent.id.desc())
        .limit(limit)
    )
    return [(event, alert) for event, alert in session.execute(query).all()]


def link_path(labels: dict[str, Any]) -> str | None:
    """The UI page an alert is about: an item, an endpoint, a model or a pipeline's items."""
    for label, page in (("item_id", "/items/"), ("endpoint", "/endpoints/"), ("model", "/models/")):
        if labels.get(label):
            return page + quote(str(labels[label]), safe="")
    if labels.get("pipeline"):
        return "/items?pipeline=" + quote(str(labels["pipeline"]), safe="")
    return None
