"""Tables of the state store. Times are naive UTC (the same on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conveyor.core.lifecycle import ACTIVE_STATUSES, status_values

# The claim's own condition, spelled as literals so PostgreSQL can match the partial index below.
CLAIMABLE_STATUSES = status_values(ACTIVE_STATUSES)
CLAIMABLE_SQL = "status IN (" + ", ".join(f"'{status}'" for status in CLAIMABLE_STATUSES) + ")"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, Any: JSON}


class Item(Base):
    __tablename__ = "items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(100))
    pipeline_version: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(10))  # "file" or "record"
    source: Mapped[str] = mapped_column(String(20), default="api")
    input_name: Mapped[str | None] = mapped_column(String(1024))
    stored_name: Mapped[str | None] = mapped_column(String(255))
    input_size: Mapped[int | None] = mapped_column(BigInteger)
    # A file item submitted by reference: where the workers read it (docs/batch.md)
    input_url: Mapped[str | None] = mapped_column(String(2048))
    record: Mapped[Any | None] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    work_dir: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    queued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_generation: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_items_status_created", "status", "created_at"),
        # Counts by pipeline and status read it alone; with queued_at last, the oldest queued
        # item of a pipeline is one probe (the /metrics queue-age gauge), not a queue scan.
        Index("ix_items_pipeline_status_queued", "pipeline", "status", "queued_at"),
        Index("ix_items_content", "pipeline", "pipeline_version", "content_hash"),
        Index("ix_items_created", "created_at"),
        # The claim's queue, oldest first: finished items leave it, so a claim never walks
        # past them (on ix_items_created PostgreSQL read every retained finished item first).
        Index(
            "ix_items_claimable",
            "created_at",
            sqlite_where=text(CLAIMABLE_SQL),
            postgresql_where=text(CLAIMABLE_SQL),
        ),
    )


class StepRun(Base):
    __tablename__ = "step_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(100))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str | None] = mapped_column(String(200))
    node_id: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)
    logs: Mapped[str | None] = mapped_column(Text)
    output: Mapped[Any | None] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("item_id", "step", "attempt", name="uq_step_runs_attempt"),
        # At most one committed success per step of an item, whatever retries happen.
        Index(
            "uq_step_runs_one_success",
            "item_id",
            "step",
            unique=True,
            sqlite_where=text("status = 'succeeded'"),
            postgresql_where=text("status = 'succeeded'"),
        ),
        Index("ix_step_runs_item", "item_id"),
        Index("ix_step_runs_status", "status"),
    )


class Result(Base):
    __tablename__ = "results"

    item_id: Mapped[str] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    pipeline: Mapped[str] = mapped_column(String(100))
    pipeline_version: Mapped[str] = mapped_column(String(50))
    result: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_results_pipeline_created", "pipeline", "created_at"),)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class WebSession(Base):
    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_web_sessions_expires", "expires_at"),)


class LoginAttempts(Base):
    """The recent login attempts of one limit's key (auth/ratelimit.py), in the store so that
    every API process counts the same attempts. The key is hashed: it holds the user name
    tried, which may be a mistyped password."""

    __tablename__ = "login_attempts"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempted_at: Mapped[list[float]] = mapped_column(JSON)  # Unix times, oldest first
    expires_at: Mapped[datetime] = mapped_column(DateTime)  # the newest leaves the window

    __table_args__ = (Index("ix_login_attempts_expires", "expires_at"),)


class ModelRun(Base):
    """A training item's registration in the model registry (one row per item, claimed)."""

    __tablename__ = "model_runs"

    item_id: Mapped[str] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))  # registering, registered, failed
    version: Mapped[int | None] = mapped_column(Integer)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    registered_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_model_runs_model_state", "model", "state"),)


class ModelAliasChange(Base):
    """Every move of a model alias: who or what moved it, when, why, and from/to which version."""

    __tablename__ = "model_alias_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100))
    alias: Mapped[str] = mapped_column(String(50))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # promote, challenge, rollback
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    item_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_model_alias_changes_model", "model", "id"),)


class TrainingTrigger(Base):
    """State of a schedule or data trigger, claimed with conditional updates (fires once)."""

    __tablename__ = "training_triggers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(100))
    last_fired_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_row_id: Mapped[int] = mapped_column(Integer, default=0)
    last_item_id: Mapped[str | None] = mapped_column(String(32))
    fires: Mapped[int] = mapped_column(Integer, default=0)  # data trigger: fires so far
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LabelledRow(Base):
    """A new labelled training row for a model's dataset (counted by its data trigger).

    ``fire`` is the data trigger's fire that first trained on the row (null: still waiting);
    the run of fire K trained on the model's dataset plus every row with ``fire <= K``."""

    __tablename__ = "labelled_rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100))
    values: Mapped[Any] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    payload: Mapped[Any | None] = mapped_column(JSON)  # the stream message it came from
    fire: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_labelled_rows_model", "model", "id"),
        Index("ix_labelled_rows_fire", "model", "fire"),
    )


class ModelEvent(Base):
    """An event published for a model; a configured type starts one training run, claimed by
    setting ``handled_at`` with a conditional update."""

    __tablename__ = "model_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[Any] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(DateTime)
    item_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_model_events_waiting", "model", "handled_at", "id"),)
