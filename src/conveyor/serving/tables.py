"""Serving tables: endpoints and their routing, experiments, the prediction log, feedback and
captured features. Light (SQLAlchemy only): Alembic and the schema test import it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from conveyor.store.models import Base, utcnow


class ServingEndpoint(Base):
    """One endpoint: its routing config as data; ``revision`` grows on every change, which is
    what replicas poll to reload."""

    __tablename__ = "serving_endpoints"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    config: Mapped[Any] = mapped_column()
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class ServingExperiment(Base):
    __tablename__ = "serving_experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(50))  # "accuracy" or "ctr"
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (Index("ix_serving_experiments_endpoint", "endpoint", "starts_at"),)


class Prediction(Base):
    """One answered (or refused) record with the model version and dataset behind it."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # In the key: PostgreSQL partitions the log by month of ts (retention/partitions.py).
    ts: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    dataset_sha256: Mapped[str | None] = mapped_column(String(64))
    features: Mapped[Any | None] = mapped_column()
    output: Mapped[Any | None] = mapped_column()
    latency_ms: Mapped[float] = mapped_column(Float)
    request_key: Mapped[str | None] = mapped_column(String(200))
    arm: Mapped[str] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_predictions_endpoint_ts", "endpoint", "ts"),
        Index("ix_predictions_key_ts", "endpoint", "request_key", "ts"),
        Index("ix_predictions_ts", "ts"),  # retention: roll-ups and pruning by time
    )


class PredictionFeedback(Base):
    """An outcome: a label for a prediction, or a click/watch event of a user (movies)."""

    __tablename__ = "prediction_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    prediction_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(20))  # "label", "watch" or "click"
    value: Mapped[Any] = mapped_column()  # the label, or the movie id watched
    request_key: Mapped[str | None] = mapped_column(String(200))
    ts: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        Index("ix_prediction_feedback_prediction", "prediction_id"),
        Index("ix_prediction_feedback_key_ts", "endpoint", "request_key", "ts"),
    )


class CapturedRow(Base):
    """Incoming features kept as unlabelled rows for later training (endpoint setting
    ``capture_features``)."""

    __tablename__ = "serving_captured_rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    prediction_id: Mapped[str] = mapped_column(String(32))
    features: Mapped[Any] = mapped_column()
    captured_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_serving_captured_rows_model", "model", "id"),)
