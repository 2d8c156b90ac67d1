"""The ``calls`` result tables (imports nothing heavier than SQLAlchemy)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from conveyor.store.models import Base, utcnow

metadata = Base.metadata  # PipelineHooks.tables: these tables sit on the store's declarative base


def _item_fk() -> ForeignKey:
    return ForeignKey("items.id", ondelete="CASCADE")


class CallResult(Base):
    __tablename__ = "call_results"

    item_id: Mapped[str] = mapped_column(String(32), _item_fk(), primary_key=True)
    duration_s: Mapped[float] = mapped_column(Float)
    channels: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    customer_issue: Mapped[str] = mapped_column(Text)
    follow_up: Mapped[bool] = mapped_column(Boolean)
    poor_call: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[Any] = mapped_column(JSON)
    customer_satisfaction: Mapped[float | None] = mapped_column(Float)
    pipeline_version: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CallSpeaker(Base):
    __tablename__ = "call_speakers"

    item_id: Mapped[str] = mapped_column(String(32), _item_fk(), primary_key=True)
    speaker: Mapped[str] = mapped_column(String(16), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    role_confidence: Mapped[float] = mapped_column(Float)
    talk_time_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    satisfaction: Mapped[float] = mapped_column(Float)


class CallEmotionScore(Base):
    __tablename__ = "call_emotion_scores"

    item_id: Mapped[str] = mapped_column(String(32), _item_fk(), primary_key=True)
    speaker: Mapped[str] = mapped_column(String(16), primary_key=True)
    emotion: Mapped[str] = mapped_column(String(16), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
