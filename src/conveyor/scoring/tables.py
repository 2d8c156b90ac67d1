"""Batch scoring tables: a job per output, and a row per part recorded as it commits.
Light (SQLAlchemy only): Alembic and the schema test import it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from conveyor.store.models import Base, utcnow


class ScoringJob(Base):
    """One ``conveyor score`` job; ``output_key`` (sha256 of the output URL) finds it again
    when the same command runs after a crash."""

    __tablename__ = "scoring_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    dataset_sha256: Mapped[str | None] = mapped_column(String(64))
    output: Mapped[str] = mapped_column(Text)
    output_key: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[Any] = mapped_column()  # the inputs as given, a list of strings
    options: Mapped[Any] = mapped_column()  # columns, format, block size, max rejects
    status: Mapped[str] = mapped_column(String(16))  # running, succeeded, failed
    requested_by: Mapped[str] = mapped_column(String(200))
    parts_total: Mapped[int] = mapped_column(Integer)
    rows_total: Mapped[int] = mapped_column(BigInteger)  # data lines or Parquet rows
    rows_scored: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_scoring_jobs_output", "output_key", "created_at"),)


class ScoringPart(Base):
    """A part of the input: a byte range of a CSV/JSONL file starting at ``first_line``, or a
    Parquet row group. ``committed_at`` is set after its output file was renamed into place."""

    __tablename__ = "scoring_parts"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    part_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str] = mapped_column(String(10))
    byte_offset: Mapped[int] = mapped_column(BigInteger)
    byte_length: Mapped[int] = mapped_column(BigInteger)
    first_line: Mapped[int] = mapped_column(BigInteger)
    row_group: Mapped[int | None] = mapped_column(Integer)
    expected_rows: Mapped[int] = mapped_column(BigInteger)
    rows_scored: Mapped[int | None] = mapped_column(BigInteger)
    rows_rejected: Mapped[int | None] = mapped_column(BigInteger)
    committed_at: Mapped[datetime | None] = mapped_column(DateTime)
