"""The ``wildlife`` result tables (imports nothing heavier than SQLAlchemy).

``group`` is an SQL keyword: quote it in hand-written SQL (``SELECT "group" FROM ...``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from conveyor.store.models import Base, utcnow

metadata = Base.metadata  # PipelineHooks.tables: these tables sit on the store's declarative base


def _item_fk() -> ForeignKey:
    return ForeignKey("items.id", ondelete="CASCADE")


class WildlifeFile(Base):
    __tablename__ = "wildlife_files"

    item_id: Mapped[str] = mapped_column(String(32), _item_fk(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "video" or "image"
    duration_s: Mapped[float] = mapped_column(Float)
    frames_analysed: Mapped[int] = mapped_column(Integer)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime)
    empty: Mapped[bool] = mapped_column(Boolean)
    empty_confidence: Mapped[float] = mapped_column(Float)
    max_animals: Mapped[int] = mapped_column(Integer)
    counts: Mapped[Any] = mapped_column(JSON)  # {"groups": {...}, "species": {...}}
    pipeline_version: Mapped[str] = mapped_column(String(50))
    detector_name: Mapped[str] = mapped_column(String(100))
    detector_version: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WildlifeTrack(Base):
    __tablename__ = "wildlife_tracks"

    item_id: Mapped[str] = mapped_column(String(32), _item_fk(), primary_key=True)
    track_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    group: Mapped[str] = mapped_column(String(16))
    species: Mapped[str] = mapped_column(String(100))
    score: Mapped[float] = mapped_column(Float)
    first_seen_s: Mapped[float] = mapped_column(Float)
    last_seen_s: Mapped[float] = mapped_column(Float)
    path: Mapped[Any] = mapped_column(JSON)  # [[time_s, x, y], ...] box centres


class WildlifeDetection(Base):
    __tablename__ = "wildlife_detections"

    item_id: Mapped[str] = mapped_column(String(32), _item_fk(), primary_key=True)
    detection: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    frame: Mapped[int] = mapped_column(Integer)
    time_s: Mapped[float] = mapped_column(Float)
    track_id: Mapped[int | None] = mapped_column(Integer)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    group: Mapped[str] = mapped_column(String(16))
    species: Mapped[str] = mapped_column(String(100))
    score: Mapped[float] = mapped_column(Float)


def store_result(session: Any, item_id: str, result: dict[str, Any]) -> None:
    """Write one file's result into the three tables (the pipeline's ``store_result`` hook)."""
    file = result["file"]
    captured = file.get("captured_at")
    session.add(
        WildlifeFile(
            item_id=item_id,
            kind=file["kind"],
            duration_s=file["duration_s"],
            frames_analysed=file["frames"],
            captured_at=_naive_utc(captured) if captured else None,
            empty=result["empty"],
            empty_confidence=result["empty_confidence"],
            max_animals=result["max_animals"],
            counts={"groups": result["counts"], "species": result["species"]},
            pipeline_version=result["pipeline_version"],
            detector_name=result["detector"]["name"],
            detector_version=result["detector"]["version"],
        )
    )
    session.add_all(
        WildlifeTrack(
            item_id=item_id,
            track_id=t["track_id"],
            group=t["group"],
            species=t["species"],
            score=t["score"],
            first_seen_s=t["first_seen_s"],
            last_seen_s=t["last_seen_s"],
            path=t["path"],
        )
        for t in result["tracks"]
    )
    session.add_all(
        WildlifeDetection(
            item_id=item_id,
            detection=number,
            frame=d["frame"],
            time_s=d["time_s"],
            track_id=d["track_id"],
            x1=d["box"][0],
            y1=d["box"][1],
            x2=d["box"][2],
            y2=d["box"][3],
            group=d["group"],
            species=d["species"],
            score=d["score"],
        )
        for number, d in enumerate(result["detections"])
    )
    session.flush()


def _naive_utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
