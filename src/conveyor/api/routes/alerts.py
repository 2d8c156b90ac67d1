"""/api/v1/alerts: Conveyor as an Alertmanager webhook receiver, and the alerts it received.

Alertmanager authenticates with an API token of the operator role, sent as
``Authorization: Bearer`` (its ``http_config.authorization.credentials_file``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from conveyor.api.security import operator, viewer
from conveyor.api.timestamps import UtcDatetime
from conveyor.auth.service import Principal
from conveyor.monitoring import alerts as logic
from conveyor.monitoring.tables import Alert

router = APIRouter(prefix="/alerts", tags=["monitoring"])
Labels = dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=10_000)]]


class WebhookAlert(BaseModel):
    """One alert of Alertmanager's webhook payload (version 4); unknown keys are ignored."""

    status: Literal["firing", "resolved"]
    labels: Labels = Field(max_length=100)
    annotations: Labels = Field(default_factory=dict, max_length=100)
    startsAt: datetime  # Alertmanager's field names
    endsAt: datetime | None = None
    generatorURL: str | None = Field(None, max_length=2000)
    fingerprint: str = Field(pattern=r"^[0-9a-f]{1,64}$")


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str = "4"
    status: Literal["firing", "resolved"]
    receiver: str = Field("", max_length=200)
    alerts: list[WebhookAlert] = Field(max_length=1000)


class WebhookAnswer(BaseModel):
    received: int
    changed: list[dict[str, str]]


class AlertOut(BaseModel):
    fingerprint: str
    name: str
    status: str
    severity: str | None
    component: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: UtcDatetime
    ends_at: UtcDatetime | None
    last_received_at: UtcDatetime
    receiver: str | None
    link: str | None = Field(description="the UI page the alert is about, if any")


class AlertEventOut(BaseModel):
    fingerprint: str
    name: str
    status: str
    starts_at: UtcDatetime
    ends_at: UtcDatetime | None
    received_at: UtcDatetime


class AlertList(BaseModel):
    alerts: list[AlertOut]
    history: list[AlertEventOut]


def _notice(alert: WebhookAlert) -> logic.Notice:
    return logic.Notice(
        fingerprint=alert.fingerprint,
        status=alert.status,
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        starts_at=logic.naive_utc(alert.startsAt) or datetime(1970, 1, 1),
        ends_at=logic.naive_utc(alert.endsAt),
        generator_url=alert.generatorURL,
    )


@router.post("/webhook", response_model=WebhookAnswer)
def webhook(payload: WebhookPayload, request: Request, _: Principal = operator) -> WebhookAnswer:
    """Alertmanager's webhook receiver: stores firing and resolved alerts with their history."""
    notices = [_notice(alert) for alert in payload.alerts]
    with request.app.state.installation.sessions.begin() as session:
        changes = logic.record_notification(session, notices, payload.receiver or None)
    return WebhookAnswer(
        received=len(notices),
        changed=[{"fingerprint": f, "status": s} for f, s in changes],
    )


@router.get("", response_model=AlertList)
def list_alerts(
    request: Request,
    status: Literal["firing", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    _: Principal = viewer,
) -> AlertList:
    """Alerts (firing first) and the latest state changes, newest first."""
    with request.app.state.installation.read_sessions() as session:
        found = logic.list_alerts(session, status, limit)
        history = logic.alert_history(session, limit)
        return AlertList(
            alerts=[_alert_out(alert) for alert in found],
            history=[
                AlertEventOut(
                    fingerprint=event.fingerprint,
                    name=alert.name,
                    status=event.status,
                    starts_at=event.starts_at,
                    ends_at=event.ends_at,
                    received_at=event.received_at,
                )
                for event, alert in history
            ],
        )


def _alert_out(alert: Alert) -> AlertOut:
    return AlertOut(
        fingerprint=alert.fingerprint,
        name=alert.name,
        status=alert.status,
        severity=alert.severity,
        component=alert.component,
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        last_received_at=alert.last_received_at,
        receiver=alert.receiver,
        link=logic.link_path(alert.labels),
    )
