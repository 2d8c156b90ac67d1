"""The prediction log's journal (serving/journal.py): rows are on local disk before the answer,
a flushed segment is deleted, a dead process's segment is replayed each row once, and a
journal the disk refuses never fails a request."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.serving.journal import PredictionJournal, Segment, encode
from conveyor.serving.predlog import PredictionLog
from conveyor.serving.tables import CapturedRow, Prediction
from support.prediction_rows import captured_row, prediction_row


def _count(sessions: sessionmaker[Session], table: Any) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def _dead_segment(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """A segment as a process killed before shipping it leaves one: written, lock released."""
    folder.mkdir(parents=True, exist_ok=True)
    segment = Segment.create(folder)
    segment.write(encode([(row, captured_row(row)) for row in rows]))
    segment.release()
    return segment.path


def test_a_dead_process_segment_is_replayed_each_row_once(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = tmp_path / "journal"
    rows = [prediction_row(n) for n in range(6)]
    path = _dead_segment(folder, rows)
    shutil.copy(path, folder / "0-copy.jsonl")  # as if two segments held the same rows
    with sessions.begin() as session:  # the dead process committed two before the kill
        session.execute(insert(Prediction), rows[:2])
        session.execute(insert(CapturedRow), [captured_row(row) for row in rows[:2]])
    log = PredictionLog(sessions, journal=PredictionJournal(folder))
    assert log.replay_journal() == 4
    assert log.replay_journal() == 0
    assert list(folder.glob("*.jsonl")) == []
    with sessions() as session:
        assert sorted(session.scalars(select(Prediction.id))) == [row["id"] for row in rows]
        assert (
            session.scalar(select(Prediction.ts).where(Prediction.id == rows[5]["id"]))
            == (rows[5]["ts"])
        )
    assert _count(sessions, CapturedRow) == len(rows)


def test_a_live_process_segment_is_left_alone(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = tmp_path / "journal"
    live = PredictionLog(sessions, journal=PredictionJournal(folder))
    live.start()
    try:
        live.add(prediction_row(1))
        other = PredictionLog(sessions, journal=PredictionJournal(folder))
        assert other.replay_journal() == 0  # the live log's segment is locked
        live.flush()
        assert _count(sessions, Prediction) == 1
    finally:
        live.close()
    assert [p for p in folder.iterdir()] == []  # shipped, and the empty one removed on close


def test_rows_are_on_disk_before_the_flush_and_the_segment_goes_after(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = tmp_path / "journal"
    journal = PredictionJournal(folder)
    log = PredictionLog(sessions, journal=journal)
    journal.open()
    log.add_all([(prediction_row(n), None) for n in range(3)])
    [segment] = folder.glob("*.jsonl")
    assert len(segment.read_bytes().splitlines()) == 3
    assert log.flush() == 3
    assert not segment.exists()
    assert [p.stat().st_size for p in folder.glob("*.jsonl")] == [0]  # the fresh segment
    journal.close()
    assert _count(sessions, Prediction) == 3


def test_a_damaged_line_is_skipped(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    path = _dead_segment(folder, [prediction_row(1)])
    with path.open("ab") as file:
        file.write(b'[{"id": "cut sho')  # the disk filled up part-way through a write
    log = PredictionLog(sessions, journal=PredictionJournal(folder))
    assert log.replay_journal() == 1


def test_a_refusing_journal_still_logs_and_counts(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    unjournaled: list[int] = []
    not_a_folder = tmp_path / "journal"
    not_a_folder.write_text("")  # every segment refused, as by a full or broken disk
    log = PredictionLog(
        sessions,
        journal=PredictionJournal(not_a_folder),
        on_unjournaled=lambda endpoint, rows: unjournaled.append(rows),
    )
    log.start()
    log.add_all([(prediction_row(n), None) for n in range(2)])  # answered all the same
    log.close()
    assert unjournaled == [2]
    assert _count(sessions, Prediction) == 2
