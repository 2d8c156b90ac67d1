"""The prediction log: rows are queued in memory by the request path and written by one
background thread in bulk (every ~200 ms or ``batch_rows`` rows). The queue is bounded:
when the store falls behind, rows are dropped and counted, requests never wait. While the
store cannot be reached, batches go to the spool on local disk (serving/spool.py) and are
written back once it answers again."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from conveyor.serving.spool import OutboxHook, PredictionSpool
from conveyor.serving.tables import CapturedRow, Prediction
from conveyor.store.availability import store_unavailable

logger = logging.getLogger(__name__)
FLUSH_SECONDS = 0.2
BATCH_ROWS = 2_000
MAX_QUEUED = 200_000
STORE_RETRY_SECONDS = 1.0  # while the store is unreachable, batches go to the spool meanwhile
PREDICTIONS = cast(Table, Prediction.__table__)  # Core inserts: no ORM work per row
CAPTURED_ROWS = cast(Table, CapturedRow.__table__)


class PredictionLog:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        on_drop: Callable[[str, int], None] = lambda endpoint, rows: None,
        flush_seconds: float = FLUSH_SECONDS,
        max_queued: int = MAX_QUEUED,
        spool: PredictionSpool | None = None,
        outbox: OutboxHook | None = None,
    ) -> None:
        self.sessions = sessions
        self.spool = spool
        self.outbox = outbox  # the stream sinks' messages, in the log's own transaction
        self._store_down_until: float | None = None  # monotonic; None while the store answers
        self._replay_due = spool is not None  # files another process left are replayed too
        self.on_drop = on_drop
        self.flush_seconds = flush_seconds
        self.max_queued = max_queued
        self._queue: deque[tuple[dict[str, Any], dict[str, Any] | None]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one writer at a time (the thread, or flush())

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="conveyor-predlog", daemon=True)
            self._thread.start()

    def add(self, row: dict[str, Any], captured: dict[str, Any] | None = None) -> None:
        """Queue one prediction row (and optionally a captured-features row); never blocks."""
        if len(self._queue) >= self.max_queued:
            self.on_drop(row["endpoint"], 1)
            return
        self._queue.append((row, captured))

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write everything queued so far; returns the number of prediction rows written."""
        written = 0
        with self._lock:
            while self._queue:
                written += self._write_batch()
            if self._replay_due and not self._store_down():
                self.replay()
        return written

    def _store_down(self) -> bool:
        """Whether the store was unreachable less than ``STORE_RETRY_SECONDS`` ago."""
        return self._store_down_until is not None and time.monotonic() < self._store_down_until

    def _write_batch(self) -> int:
        rows: list[dict[str, Any]] = []
        captured: list[dict[str, Any]] = []
        while self._queue and len(rows) < BATCH_ROWS:
            row, capture = self._queue.popleft()
            rows.append(row)
            if capture is not None:
                captured.append(capture)
        if self._store_down():
            self._spool(rows, captured)
            return len(rows)
        try:
            with self.sessions.begin() as session:
                session.execute(insert(PREDICTIONS), rows)
                if captured:
                    session.execute(insert(CAPTURED_ROWS), captured)
                if self.outbox is not None:
                    self.outbox(session, rows)
        except DBAPIError as error:
            if not store_unavailable(error) or self.spool is None:
                return self._drop(rows)
            self._mark_down(error)
            self._spool(rows, captured)
            return len(rows)
        except Exception:
            return self._drop(rows)
        self._store_back()
        return len(rows)

    def _drop(self, rows: list[dict[str, Any]]) -> int:
        logger.exception("could not write %d prediction log rows; dropped", len(rows))
        self.on_drop(rows[0]["endpoint"], len(rows))
        return len(rows)

    def _spool(self, rows: list[dict[str, Any]], captured: list[dict[str, Any]]) -> None:
        assert self.spool is not None  # only a log with a spool marks the store down
        if self.spool.keep(rows, captured):
            self._replay_due = True
        else:
            logger.error("the prediction log spool is full: %d rows dropped", len(rows))
            self.on_drop(rows[0]["endpoint"], len(rows))

    def _mark_down(self, error: DBAPIError) -> None:
        if self._store_down_until is None:
            logger.warning(
                "the store is unreachable (%s): the prediction log goes to %s until it returns",
                type(error.orig).__name__,
                self.spool.folder if self.spool else None,
            )
        self._store_down_until = time.monotonic() + STORE_RETRY_SECONDS

    def _store_back(self) -> None:
        if self._store_down_until is not None:
            logger.warning("the store is back: writing the spooled prediction log")
        self._store_down_until = None

    def replay(self) -> int:
        """Write the spooled batches back (the writer thread does this when the store
        returns); returns the rows inserted. Stops while the store cannot be reached; a batch
        it refuses for another reason stays on disk, logged, and is tried again at the next
        replay (spooling again, or the next start)."""
        if self.spool is None:
            return 0
        inserted = 0
        for path in self.spool.files():
            try:
                with self.sessions.begin() as session:
                    rows = self.spool.replay(session, path, self.outbox)
            except DBAPIError as error:
                if store_unavailable(error):
                    self._mark_down(error)
                    return inserted
                logger.exception("spooled prediction log batch %s refused; kept", path.name)
                continue
            path.unlink(missing_ok=True)
            inserted += rows or 0
            self._store_back()
        self._replay_due = False
        return inserted

    def close(self) -> None:
        """Stop the thread after a last flush (on shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
