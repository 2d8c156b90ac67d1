"""What a background loop logs while the store cannot be reached.

The loops of ``conveyor up`` (model operations, the scoring worker, the stream runner and
relay, maintenance, the inbox) and of ``conveyor serve`` try again every few seconds. During a
database outage a traceback per attempt would bury everything else in the log, so an
unreachable store (see :mod:`conveyor.store.availability`) is logged once per outage as a
warning, and its end once as an info line. Any other error is a bug or a misconfiguration and
keeps its traceback on every attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError

from conveyor.store.availability import store_unavailable


class OutageLog:
    """One loop's view of the store: ``attempt`` each round, or ``failed``/``succeeded``.
    Threads of one loop (a consumer per stream source) may share it: they say it once."""

    def __init__(self, loop: str, retry_seconds: float, logger: logging.Logger) -> None:
        self.loop = loop
        self.retry_seconds = retry_seconds
        self.logger = logger  # the loop's own, so lines keep their module's name
        self.down_since: float | None = None  # monotonic time the outage was first seen
        self._lock = threading.Lock()

    @property
    def store_down(self) -> bool:
        return self.down_since is not None

    @contextmanager
    def attempt(self, failure: str) -> Iterator[None]:
        """Run the block as one round: an exception is logged (``failure`` is the message of
        an error other than an unreachable store) and not raised; success ends an outage."""
        try:
            yield
        except Exception as error:
            self.failed(error, failure)
        else:
            self.succeeded()

    def failed(self, error: BaseException, failure: str) -> bool:
        """Log a failed round: ``failure`` and the traceback, or the start of an outage; True
        when the store is unreachable."""
        if self.unreachable(error):
            return True
        self.logger.error(failure, exc_info=error)
        return False

    def unreachable(self, error: BaseException) -> bool:
        """True when ``error`` means the store is unreachable, logged if it starts an outage;
        False (nothing logged) for any other error, which the caller reports its own way."""
        cause = unreachable_cause(error)
        if cause is None:
            return False
        with self._lock:
            if self.down_since is not None:
                return True
            self.down_since = time.monotonic()
        self.logger.warning(
            "store unreachable, %s paused: %s; retrying every %g s",
            self.loop,
            reason(cause),
            self.retry_seconds,
        )
        return True

    def succeeded(self) -> None:
        """A round got through: log the end of the outage, if there was one."""
        with self._lock:
            if self.down_since is None:
                return
            seconds = time.monotonic() - self.down_since
            self.down_since = None
        self.logger.info("store reachable again, %s resumed (%.0f s after)", self.loop, seconds)


def unreachable_cause(error: BaseException) -> BaseException | None:
    """``error``, or the error it was raised from or while handling, that says the store is
    unreachable; None when none does."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if store_unavailable(current):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def reason(error: BaseException) -> str:
    """One line: the driver's exception and the first line of its message (SQLAlchemy's own
    text adds the statement and a link over several lines)."""
    original = error.orig if isinstance(error, DBAPIError) and error.orig else error
    lines = str(original).strip().splitlines()
    first = lines[0].strip() if lines else ""
    return f"{type(original).__name__}: {first}" if first else type(original).__name__
