"""Timestamps in responses. The store keeps naive UTC; a response must say it is UTC, because
OpenAPI's ``date-time`` is RFC 3339, which requires an offset, and a browser's ``new Date()``
reads a string without one as local time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def as_utc(value: datetime) -> datetime:
    """Naive values are UTC (the store's convention); aware ones are converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
