"""Alert tables: the alerts Alertmanager delivered to Conveyor's receiver and their history.
Light (SQLAlchemy only): Alembic and the schema test import it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from conveyor.store.models import Base, utcnow


class Alert(Base):
    """The latest known state of one alert (Alertmanager's fingerprint of its labels)."""

    __tablename__ = "alerts"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))  # "firing" or "resolved"
    severity: Mapped[str | None] = mapped_column(String(50))
    component: Mapped[str | None] = mapped_column(String(50))
    labels: Mapped[Any] = mapped_column()
    annotations: Mapped[Any] = mapped_column()
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    generator_url: Mapped[str | None] = mapped_column(Text)
    receiver: Mapped[str | None] = mapped_column(String(200))
    first_received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_alerts_status_received", "status", "last_received_at"),)


class AlertEvent(Base):
    """One change of an alert's state as delivered: it started firing, or it resolved."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        Index("ix_alert_events_fingerprint", "fingerprint", "id"),
        Index("ix_alert_events_received", "received_at"),
    )
