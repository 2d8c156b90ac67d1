"""Roll-up tables and their watermarks. Light (SQLAlchemy only): Alembic and the schema test
import it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conveyor.store.models import Base


class PredictionRollup(Base):
    """Predictions of one minute or hour per endpoint, model version and arm: counts, latency
    sum and maximum, and a latency histogram (``latency_buckets``: cumulative counts at
    ``conveyor.retention.policy.LATENCY_BOUNDS_MS``, the last one +Inf) for percentiles."""

    __tablename__ = "prediction_rollups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resolution: Mapped[str] = mapped_column(String(6))  # "minute" or "hour"
    period_start: Mapped[datetime] = mapped_column(DateTime)
    endpoint: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    arm: Mapped[str] = mapped_column(String(100))
    requests: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    latency_sum_ms: Mapped[float] = mapped_column(Float)
    latency_max_ms: Mapped[float] = mapped_column(Float)
    latency_buckets: Mapped[Any] = mapped_column()

    __table_args__ = (
        UniqueConstraint(
            "resolution", "period_start", "endpoint", "model", "version", "arm",
            name="uq_prediction_rollups_period",
        ),
        Index("ix_prediction_rollups_endpoint", "endpoint", "resolution", "period_start"),
    )  # fmt: skip


class StepRunRollup(Base):
    """Finished step runs of one minute or hour per pipeline, step and status."""

    __tablename__ = "step_run_rollups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resolution: Mapped[str] = mapped_column(String(6))
    period_start: Mapped[datetime] = mapped_column(DateTime)
    pipeline: Mapped[str] = mapped_column(String(100))
    step: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    runs: Mapped[int] = mapped_column(Integer)
    duration_sum_seconds: Mapped[float] = mapped_column(Float)
    duration_max_seconds: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint(
            "resolution", "period_start", "pipeline", "step", "status",
            name="uq_step_run_rollups_period",
        ),
        Index("ix_step_run_rollups_pipeline", "pipeline", "resolution", "period_start"),
    )  # fmt: skip


class RollupWatermark(Base):
    """How far a roll-up has gone: every period before ``rolled_until`` is rolled up, and raw
    rows before it may be pruned."""

    __tablename__ = "rollup_watermarks"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)  # e.g. "predictions:minute"
    rolled_until: Mapped[datetime] = mapped_column(DateTime)
