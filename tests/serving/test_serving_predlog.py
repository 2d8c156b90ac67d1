"""The prediction log: bounded, never raises into a request, bulk-written, flushed on close."""

from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import sessionmaker

from conveyor.serving.predlog import PredictionLog
from conveyor.serving.tables import Prediction
from conveyor.store.database import connect, migrate, session_factory


def row(endpoint: str = "heart") -> dict:
    return {
        "id": os.urandom(16).hex(),
        "ts": datetime(2026, 11, 25, 12),
        "endpoint": endpoint,
        "model": "heart",
        "version": 1,
        "dataset_sha256": "d" * 64,
        "features": {"age": 61},
        "output": {"label": 1},
        "latency_ms": 0.2,
        "request_key": None,
        "arm": "champion",
        "error": None,
    }


def test_full_queue_drops_and_counts_and_close_flushes(database_url) -> None:
    engine = connect(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    dropped: list[tuple[str, int]] = []
    log = PredictionLog(
        sessions, lambda e, n: dropped.append((e, n)), flush_seconds=60, max_queued=3
    )
    log.start()
    for _ in range(5):
        log.add(row())
    assert dropped == [("heart", 1), ("heart", 1)]
    log.close()  # the thread waits 60 s between flushes: only close() writes
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 3
    engine.dispose()


def test_a_store_that_refuses_the_batch_drops_it_without_raising(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables
    dropped: list[tuple[str, int]] = []
    log = PredictionLog(sessionmaker(engine), lambda e, n: dropped.append((e, n)))
    for _ in range(4):
        log.add(row("movies"))
    assert log.flush() == 4
    assert dropped == [("movies", 4)]
    engine.dispose()
