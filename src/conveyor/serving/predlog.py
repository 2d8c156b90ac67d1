"""The prediction log: the request path appends each row to this process's journal on local
disk (serving/journal.py, so a SIGKILL right after the answer loses nothing) and queues it in
memory; one background thread writes the queue to the store in bulk (every ~200 ms or
``batch_rows`` rows), then deletes the journal segment those rows were in. The queue is
bounded: when the store falls behind, rows are dropped and counted, requests never wait. While
the store cannot be reached, batches go to the spool on local disk (serving/spool.py) and are
written back once it answers again. Journal segments a dead process left are replayed, each
row once, at start and every ``JOURNAL_SCAN_SECONDS``."""

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

from conveyor.serving.journal import Entry, PredictionJournal, Segment, encode, read_segment
from conveyor.serving.spool import OutboxHook, PredictionSpool, insert_once
from conveyor.serving.tables import CapturedRow, Prediction
from conveyor.store.availability import store_unavailable

logger = logging.getLogger(__name__)
FLUSH_SECONDS = 0.2
BATCH_ROWS = 2_000
MAX_QUEUED = 200_000
STORE_RETRY_SECONDS = 1.0  # while the store is unreachable, batches go to the spool meanwhile
JOURNAL_SCAN_SECONDS = 10.0  # how often a live process looks for dead processes' segments
JOURNAL_ERROR_SECONDS = 60.0  # a failing journal disk is logged at most this often
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
        journal: PredictionJournal | None = None,
        on_unjournaled: Callable[[str, int], None] = lambda endpoint, rows: None,
    ) -> None:
        self.sessions = sessions
        self.spool = spool
        self.journal = journal
        self.on_unjournaled = on_unjournaled
        self._journal_scan_at = 0.0  # monotonic; 0: at the first flush
        self._journal_error_at: float | None = None
        self.outbox = outbox  # the stream sinks' messages, in the log's own transaction
        self._store_down_until: float | None = None  # monotonic; None while the store answers
        self._replay_due = spool is not None  # files another process left are replayed too
        self.on_drop = on_drop
        self.flush_seconds = flush_seconds
        self.max_queued = max_queued
        self._queue: deque[Entry] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one writer at a time (the thread, or flush())
        # The journal's append and the queue's, as one step: a rotation then takes exactly the
        # rows of the segments it ships.
        self._adding = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            self._open_journal()
            self._thread = threading.Thread(target=self._run, name="conveyor-predlog", daemon=True)
            self._thread.start()

    def _open_journal(self) -> None:
        if self.journal is None:
            return
        try:
            self.journal.open()
        except OSError:
            folder = self.journal.folder
            logger.exception("no prediction journal in %s: rows wait in memory only", folder)

    def add(self, row: dict[str, Any], captured: dict[str, Any] | None = None) -> None:
        """Journal and queue one prediction row (and optionally a captured-features row)."""
        self.add_all([(row, captured)])

    def add_all(self, entries: list[Entry]) -> None:
        """Journal and queue a request's rows; returns once they are on local disk (never
        waits for the store). Past ``max_queued`` rows they are dropped and counted."""
        if not entries:
            return
        if len(self._queue) >= self.max_queued:
            self.on_drop(entries[0][0]["endpoint"], len(entries))
            return
        data = self._encoded(entries)
        with self._adding:
            if data is not None:
                self._journal(data, entries)
            self._queue.extend(entries)

    def _encoded(self, entries: list[Entry]) -> bytes | None:
        if self.journal is None:
            return None
        try:
            return encode(entries)
        except TypeError:
            self._unjournaled(entries)
            return None

    def _journal(self, data: bytes, entries: list[Entry]) -> None:
        assert self.journal is not None
        try:
            self.journal.write(data)
        except OSError:
            self._unjournaled(entries)

    def _unjournaled(self, entries: list[Entry]) -> None:
        """The rows go to the store from memory only (a SIGKILL in the next ~200 ms loses
        them): counted, and logged at most every ``JOURNAL_ERROR_SECONDS``."""
        self.on_unjournaled(entries[0][0]["endpoint"], len(entries))
        now = time.monotonic()
        if self._journal_error_at is None or now - self._journal_error_at > JOURNAL_ERROR_SECONDS:
            self._journal_error_at = now
            logger.exception("could not journal %d prediction log rows", len(entries))

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self._flush_logged()
        self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception:  # the thread must outlive a bad disk or a bug in one flush
            logger.exception("the prediction log's flush failed; trying again")

    def flush(self) -> int:
        """Write everything queued so far; returns the number of prediction rows written."""
        written = 0
        with self._lock:
            pending, shipped = self._take_queue()
            while pending:
                written += self._write_batch(pending)
            if shipped is not None:  # every row in it is in the store, the spool or dropped
                _discard(shipped)
            if self._replay_due and not self._store_down():
                self.replay()
            if self._journal_scan_due():
                self.replay_journal()
        return written

    def _take_queue(self) -> tuple[deque[Entry], Segment | None]:
        """The queued rows, and the journal segment to delete once they are written (None
        when there is no segment or no fresh one could be made: it is kept then)."""
        fresh = None
        if self.journal is not None and self.journal.wants_rotation():
            fresh = self.journal.fresh_segment()
        with self._adding:
            pending, self._queue = self._queue, deque()
            shipped = self.journal.rotate(fresh) if fresh is not None and self.journal else None
        return pending, shipped

    def _journal_scan_due(self) -> bool:
        if self.journal is None or self._store_down():
            return False
        return time.monotonic() >= self._journal_scan_at

    def _store_down(self) -> bool:
        """Whether the store was unreachable less than ``STORE_RETRY_SECONDS`` ago."""
        return self._store_down_until is not None and time.monotonic() < self._store_down_until

    def _write_batch(self, pending: deque[Entry]) -> int:
        rows: list[dict[str, Any]] = []
        captured: list[dict[str, Any]] = []
        while pending and len(rows) < BATCH_ROWS:
            row, capture = pending.popleft()
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

    def replay_journal(self) -> int:
        """Write the rows of journal segments that dead processes left (the writer thread
        does this at start and every ``JOURNAL_SCAN_SECONDS``), each row once; returns the
        rows inserted. A segment stays on disk while the store cannot be reached."""
        if self.journal is None:
            return 0
        self._journal_scan_at = time.monotonic() + JOURNAL_SCAN_SECONDS
        inserted = 0
        for segment in self.journal.orphans():
            try:
                rows, captured = read_segment(segment)
                with self.sessions.begin() as session:
                    inserted += insert_once(session, rows, captured, self.outbox)
            except DBAPIError as error:
                segment.release()
                if store_unavailable(error):
                    self._mark_down(error)
                    return inserted
                logger.exception("journal %s refused by the store; kept", segment.path.name)
                continue
            except Exception:
                segment.release()
                logger.exception("could not replay journal %s; kept", segment.path.name)
                continue
            segment.discard()
        if inserted:
            logger.warning("wrote %d prediction log rows a stopped process had journaled", inserted)
        return inserted

    def close(self) -> None:
        """Stop the thread after a last flush (on shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
        if self.journal is not None:
            with self._adding:
                self.journal.close()


def _discard(segment: Segment) -> None:
    try:
        segment.discard()
    except OSError:  # its rows are in the store: a replay of it would insert nothing
        logger.exception("could not delete shipped prediction journal %s", segment.path)
