"""The prediction log's journal: every answered prediction is appended to a file on local disk
before its answer leaves the process, so a serving process killed right after answering
(SIGKILL, the OOM killer) loses no row the log thread had not written to the store yet.

``write()`` puts a row in the operating system's page cache, which outlives the process; there
is no fsync per request (it costs milliseconds), so a machine crash or power cut can still lose
the last seconds of rows the kernel had not flushed.

Each process appends to a segment file of its own and holds an exclusive ``flock`` on it for as
long as the segment is its own (the kernel releases it when the process dies, SIGKILL
included). The log thread rotates segments: new rows go to a fresh segment, and the old one is
deleted once each of its rows is in the store (or in the spool). A segment whose lock any
process can take was left by a process that died: its rows are replayed with insert-if-absent
on the prediction id (serving/spool.py ``insert_once``), so rows the dead process committed
just before the kill are not written twice, and the file is deleted.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from conveyor.filemodes import PRIVATE_DIRECTORY
from conveyor.serving.spool import Batch

logger = logging.getLogger(__name__)
Entry = tuple[dict[str, Any], dict[str, Any] | None]  # a prediction row, its captured row
SUFFIX = ".jsonl"
CREATING = ".creating"
STALE_CREATING_SECONDS = 60.0  # a half-made segment of a process that died while making it
ERROR_LOG_SECONDS = 60.0  # a disk that refuses new segments is logged at most this often
OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC


def encode(entries: Sequence[Entry]) -> bytes:
    """One line per row; raises TypeError for a value JSON cannot hold."""
    return b"".join(orjson.dumps(entry) + b"\n" for entry in entries)


@dataclass
class Segment:
    """One journal file, locked by its ``fd`` for as long as it is open."""

    path: Path
    fd: int
    size: int = 0

    @classmethod
    def create(cls, folder: Path) -> Segment:
        # Made and locked under a name no scan reads, then renamed: another process never sees
        # it unlocked (and so never takes it for a dead process's and deletes it).
        name = f"{time.time_ns():020d}-{os.getpid()}"
        making = folder / f".{name}{CREATING}"
        fd = os.open(making, OPEN_FLAGS, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path = folder / f"{name}{SUFFIX}"
            os.rename(making, path)
        except OSError:
            os.close(fd)
            making.unlink(missing_ok=True)
            raise
        return cls(path, fd)

    def write(self, data: bytes) -> None:
        written = os.write(self.fd, data)
        self.size += written
        if written < len(data):
            raise OSError(errno.ENOSPC, f"short write to {self.path}")

    def discard(self) -> None:
        """Delete the file (its rows are in the store), then give up the lock."""
        self.path.unlink(missing_ok=True)
        os.close(self.fd)

    def release(self) -> None:
        """Give up the lock and keep the file (for a later replay)."""
        os.close(self.fd)


class PredictionJournal:
    """This process's journal segments in ``folder``, and the ones dead processes left there.
    The caller (serving/predlog.py) serialises ``write`` and ``rotate`` with one lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._current: Segment | None = None
        self._torn = False  # the last write failed part-way: start the next on a new line
        self._error_logged_at = -ERROR_LOG_SECONDS
        self._closed = False

    def open(self) -> None:
        """Make this process's first segment (raises OSError when the folder refuses)."""
        if self._current is None:
            self.folder.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
            self._current = Segment.create(self.folder)

    def write(self, data: bytes) -> None:
        """Append encoded rows to the current segment; raises OSError (disk full, no
        segment) and the caller answers anyway."""
        if self._current is None:
            raise OSError(errno.ENOENT, "no journal segment (the last one could not be made)")
        if self._torn:
            data = b"\n" + data
        self._torn = True
        self._current.write(data)
        self._torn = False

    def wants_rotation(self) -> bool:
        """Whether the current segment holds rows (or there is none, after a disk error)."""
        if self._closed:
            return False
        return self._current is None or self._current.size > 0

    def fresh_segment(self) -> Segment | None:
        """A new segment for ``rotate`` (made outside the request path's lock), or None when
        the disk refuses (logged; the current segment then keeps growing)."""
        try:
            self.folder.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
            return Segment.create(self.folder)
        except OSError:
            if time.monotonic() - self._error_logged_at > ERROR_LOG_SECONDS:
                self._error_logged_at = time.monotonic()
                logger.exception("could not make a prediction journal segment in %s", self.folder)
            return None

    def rotate(self, fresh: Segment) -> Segment | None:
        """Make ``fresh`` current; returns the old segment, to ``discard`` once its rows are in
        the store."""
        old, self._current, self._torn = self._current, fresh, False
        return old

    def close(self) -> None:
        """Delete the current segment if it holds no rows, else keep it for a replay."""
        segment, self._current, self._closed = self._current, None, True
        if segment is None:
            return
        if segment.size == 0:
            segment.discard()
        else:
            segment.release()

    def orphans(self) -> Iterator[Segment]:
        """Segments of processes that died, each locked by this process until the caller
        ``discard``s (rows replayed) or ``release``s it."""
        if not self.folder.is_dir():
            return
        self._remove_stale_creating()
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            segment = _lock_if_unowned(path)
            if segment is not None:
                yield segment

    def _remove_stale_creating(self) -> None:
        limit = time.time() - STALE_CREATING_SECONDS
        for path in self.folder.glob(f".*{CREATING}"):
            try:
                if path.stat().st_mtime < limit:
                    path.unlink()
            except FileNotFoundError:
                continue


def _lock_if_unowned(path: Path) -> Segment | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # its owner shipped it meanwhile
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # a live process's (this one's included: flock is per open file)
        os.close(fd)
        return None
    status = os.fstat(fd)
    if status.st_nlink == 0:  # its owner shipped it between our open and our lock
        os.close(fd)
        return None
    return Segment(path, fd, status.st_size)


def read_segment(segment: Segment) -> Batch:
    """The prediction rows and captured rows of a segment; a line cut short (the disk filled
    up part-way through a write) is skipped, logged."""
    rows: list[dict[str, Any]] = []
    captured: list[dict[str, Any]] = []
    with open(segment.fd, "rb", closefd=False) as file:
        data = file.read()
    for line in data.splitlines():
        if not line:
            continue
        try:
            row, capture = orjson.loads(line)
        except (orjson.JSONDecodeError, ValueError):
            logger.error("skipping a damaged line of prediction journal %s", segment.path.name)
            continue
        row["ts"] = datetime.fromisoformat(row["ts"])
        rows.append(row)
        if capture is not None:
            capture["captured_at"] = datetime.fromisoformat(capture["captured_at"])
            captured.append(capture)
    return rows, captured
