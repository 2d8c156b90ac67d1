"""The prediction log's spool: batches kept on local disk while the store cannot be reached,
and written back, exactly once, when it returns.

One file per batch, written under a temporary name then renamed, so a replay never reads half a
file. A replay inserts with ``ON CONFLICT DO NOTHING`` on the prediction id, and only the
captured rows of predictions it inserted: a batch whose commit reached the store although
the connection dropped before the answer (then spooled too) is not written twice. Any
process serving the same home may replay any file (one that died during an outage leaves its
files to the next); two replaying one file at once insert nothing twice, for the same reason.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import orjson
from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from conveyor.filemodes import PRIVATE_DIRECTORY
from conveyor.serving.tables import CapturedRow, Prediction

logger = logging.getLogger(__name__)
MAX_SPOOL_BYTES = 1 << 30  # past this, batches are dropped (and counted) instead
PREDICTIONS = cast(Table, Prediction.__table__)
CAPTURED_ROWS = cast(Table, CapturedRow.__table__)
TIMES = (("rows", "ts"), ("captured", "captured_at"))

Batch = tuple[list[dict[str, Any]], list[dict[str, Any]]]  # prediction rows, captured rows
# Writes the stream sinks' outbox rows of prediction rows in the transaction that inserts them.
OutboxHook = Callable[[Session, Sequence[Mapping[str, Any]]], None]


class PredictionSpool:
    def __init__(self, folder: Path, max_bytes: int = MAX_SPOOL_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    def keep(self, rows: list[dict[str, Any]], captured: list[dict[str, Any]]) -> bool:
        """Write one batch to disk; False when the spool is full (or the disk refuses)."""
        data = orjson.dumps({"rows": rows, "captured": captured})
        try:
            self.folder.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
            if self.size() + len(data) > self.max_bytes:
                return False
            name = f"{time.time_ns():020d}-{os.getpid()}-{len(rows)}"
            partial = self.folder / f".{name}.partial"
            partial.write_bytes(data)
            partial.rename(self.folder / f"{name}.json")
        except OSError:
            logger.exception("could not spool %d prediction log rows", len(rows))
            return False
        return True

    def files(self) -> list[Path]:
        """Spooled batches, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.json"))

    def size(self) -> int:
        return sum(path.stat().st_size for path in self.files() if path.exists())

    def rows(self) -> int:
        """Prediction rows waiting on disk (from the file names, nothing is read)."""
        return sum(int(path.stem.rsplit("-", 1)[-1]) for path in self.files())

    def replay(self, session: Session, path: Path, outbox: OutboxHook | None = None) -> int | None:
        """Write one spooled batch in ``session``; the caller removes the file once that
        commits. Returns the rows inserted, None if another process took the file."""
        try:
            batch = read_batch(path)
        except FileNotFoundError:
            return None
        return insert_once(session, *batch, outbox=outbox)


def read_batch(path: Path) -> Batch:
    data = orjson.loads(path.read_bytes())
    for key, column in TIMES:
        for row in data[key]:
            row[column] = datetime.fromisoformat(row[column])
    return data["rows"], data["captured"]


def insert_once(
    session: Session,
    rows: list[dict[str, Any]],
    captured: list[dict[str, Any]],
    outbox: OutboxHook | None = None,
) -> int:
    """Insert the prediction rows not in the log yet, and the captured rows of those (and,
    with ``outbox``, the stream sinks' messages of those)."""
    if not rows:
        return 0
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(PREDICTIONS).on_conflict_do_nothing().returning(PREDICTIONS.c.id)
    inserted = set(session.scalars(statement, rows).all())
    new_captured = [row for row in captured if row["prediction_id"] in inserted]
    if new_captured:
        session.execute(insert(CAPTURED_ROWS), new_captured)
    if outbox is not None and inserted:
        outbox(session, [row for row in rows if row["id"] in inserted])
    return len(inserted)
