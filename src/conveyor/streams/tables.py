"""Stream tables: configured sources, the message identities already taken, dead letters.
Light (SQLAlchemy only): Alembic and the schema test import it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from conveyor.store.models import Base, utcnow


class StreamSource(Base):
    """A broker topic/stream/queue whose messages become items of ``pipeline``."""

    __tablename__ = "stream_sources"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    pipeline: Mapped[str] = mapped_column(String(100))
    # Set: messages become labelled rows of this model (its data trigger), not items.
    model: Mapped[str | None] = mapped_column(String(100))
    consumer_group: Mapped[str] = mapped_column(String(200))
    options: Mapped[Any] = mapped_column()  # TLS and credential settings, str -> str
    record_schema: Mapped[Any | None] = mapped_column()  # JSON Schema each record must meet
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_queued: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Written by the running consumers, read by `streams list` and the API without broker I/O.
    lag: Mapped[int | None] = mapped_column(BigInteger)
    lag_at: Mapped[datetime | None] = mapped_column(DateTime)


class StreamMessage(Base):
    """A message already taken from a source: its item (or labelled row of a training source),
    or neither when it became a dead letter. The primary key makes a redelivered message a
    no-op."""

    __tablename__ = "stream_messages"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    identity: Mapped[str] = mapped_column(String(512), primary_key=True)
    item_id: Mapped[str | None] = mapped_column(String(32))
    row_id: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        Index("ix_stream_messages_item", "item_id", "source"),  # backpressure count
        Index("ix_stream_messages_received", "source", "received_at"),
    )


class StreamDeadLetter(Base):
    """A message that could not become an item, kept whole with the reason."""

    __tablename__ = "stream_dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(100))
    identity: Mapped[str] = mapped_column(String(512))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_stream_dead_letters_source", "source", "id"),)


class StreamSink(Base):
    """A broker topic/stream/queue that receives the results of ``pipeline``'s finished items.
    One relay at a time publishes a sink's outbox: the one holding ``relay_owner``'s lease."""

    __tablename__ = "stream_sinks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    pipeline: Mapped[str] = mapped_column(String(100), index=True)
    options: Mapped[Any] = mapped_column()  # TLS and credential settings, str -> str
    statuses: Mapped[Any] = mapped_column()  # the final statuses published, e.g. ["succeeded"]
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    relay_owner: Mapped[str | None] = mapped_column(String(200))
    relay_lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    published: Mapped[int] = mapped_column(BigInteger, default=0)
    published_at: Mapped[datetime | None] = mapped_column(DateTime)  # the latest confirmed
    last_error: Mapped[str | None] = mapped_column(Text)


class StreamOutboxRow(Base):
    """A message a sink still has to publish, written in the transaction that made its item
    final and deleted once the broker confirmed it."""

    __tablename__ = "stream_outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    sink: Mapped[str] = mapped_column(String(100))
    item_id: Mapped[str] = mapped_column(String(32))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_stream_outbox_sink", "sink", "id"),)
