"""Rules every request parameter follows, whichever route reads it."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request

from conveyor.api.errors import ApiError

NUL = "\x00"


def reject_nul_characters(request: Request) -> None:
    """No path or query may hold a NUL character: no name, id or filter can contain one, and
    PostgreSQL refuses them in text, which would turn a typo into a server error."""
    query = request.query_params.multi_items()
    if NUL in request.url.path or any(NUL in key + value for key, value in query):
        raise ApiError(
            422,
            "invalid_request",
            "the URL contains a NUL character (%00); no id, name or filter can hold one",
        )


def utc_naive(value: datetime | None, field: str) -> datetime | None:
    """The store keeps naive UTC; accept any offset the client sends."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ApiError(
            422,
            "invalid_request",
            f"{field} is out of range once converted to UTC",
            [{"field": f"query.{field}", "problem": "out of range in UTC"}],
        ) from None
