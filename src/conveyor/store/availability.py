"""Telling "the store cannot be reached right now" from every other database error.

A store that is down, restarting or dropped the connection fails the same work that will
succeed once it is back: the controller keeps its outcomes and commits them later, the API
answers 503 with Retry-After, serving spools its prediction log. Any other database error (a
missing table, a constraint, bad SQL) is a bug or a misconfiguration and is not retried.

SQLAlchemy decides what a dropped connection is (``DBAPIError.connection_invalidated``, set
by the dialect's ``is_disconnect``); a failed connection attempt has no connection to
invalidate, so it is recognised as an ``OperationalError`` raised before any statement ran.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

from conveyor.errors import ConveyorError

RETRY_AFTER_SECONDS = 5
# PostgreSQL's SQLSTATEs of a server going away: class 08 (connection exception), and
# admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down).
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


class StoreUnavailableError(ConveyorError):
    """The store (database) cannot be reached; the request did nothing and can be repeated."""

    code = "store_unavailable"
    http_status = 503
    retry_after = RETRY_AFTER_SECONDS


def store_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the store is unreachable for now (down, restarting, the
    connection dropped), so the same work can be tried again later."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
    if sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES:
        return True
    return isinstance(error, OperationalError) and error.statement is None


def unavailable_error() -> StoreUnavailableError:
    return StoreUnavailableError(
        "the store (database) cannot be reached right now; nothing was changed. Try again "
        f"in {RETRY_AFTER_SECONDS} s (Retry-After)."
    )
