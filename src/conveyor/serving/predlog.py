"""The prediction log: rows are queued in memory by the request path and written by one
background thread in bulk (every ~200 ms or ``batch_rows`` rows). The queue is bounded:
when the store falls behind, rows are dropped and counted, requests never wait."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session, sessionmaker

from conveyor.serving.tables import CapturedRow, Prediction

logger = logging.getLogger(__name__)
FLUSH_SECONDS = 0.2
BATCH_ROWS = 2_000
MAX_QUEUED = 200_000
PREDICTIONS = cast(Table, Prediction.__table__)  # Core inserts: no ORM work per row
CAPTURED_ROWS = cast(Table, CapturedRow.__table__)


class PredictionLog:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        on_drop: Callable[[str, int], None] = lambda endpoint, rows: None,
        flush_seconds: float = FLUSH_SECONDS,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.sessions = sessions
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
        return written

    def _write_batch(self) -> int:
        rows: list[dict[str, Any]] = []
        captured: list[dict[str, Any]] = []
        while self._queue and len(rows) < BATCH_ROWS:
            row, capture = self._queue.popleft()
            rows.append(row)
            if capture is not None:
                captured.append(capture)
        try:
            with self.sessions.begin() as session:
                session.execute(insert(PREDICTIONS), rows)
                if captured:
                    session.execute(insert(CAPTURED_ROWS), captured)
        except Exception:
            logger.exception("could not write %d prediction log rows; dropped", len(rows))
            self.on_drop(rows[0]["endpoint"], len(rows))
        return len(rows)

    def close(self) -> None:
        """Stop the thread after a last flush (on shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
