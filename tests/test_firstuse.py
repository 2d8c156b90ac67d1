"""First-use locks: a held lock makes the next process say so and wait, and give up with a
clear error after the timeout; on PostgreSQL the lock is an advisory lock in the database."""

from __future__ import annotations

import logging
import stat
import threading
import time
from pathlib import Path

import pytest

from conveyor.firstuse import (
    InitialisationTimeoutError,
    database_lock,
    file_lock,
    replace_atomically,
)


def _hold(lock_factory, release: threading.Event, held: threading.Event) -> threading.Thread:  # type: ignore[no-untyped-def]
    def run() -> None:
        with lock_factory():
            held.set()
            release.wait(30)

    thread = threading.Thread(target=run)
    thread.start()
    assert held.wait(30)
    return thread


def test_a_held_file_lock_is_waited_for_then_taken(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    lock = tmp_path / "store.db.schema.lock"
    release, held = threading.Event(), threading.Event()
    holder = _hold(lambda: file_lock(lock, "migrating the store"), release, held)
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), file_lock(lock, "migrating the store", timeout=30):
        waited = time.monotonic() - started
    holder.join()
    assert waited >= 0.4
    assert [r.getMessage() for r in caplog.records] == [
        f"another Conveyor process is migrating the store at {tmp_path}; waiting (up to 30 s)"
    ]


def test_a_file_lock_held_too_long_gives_a_clear_error(tmp_path: Path) -> None:
    lock = tmp_path / "cache.lock"
    release, held = threading.Event(), threading.Event()
    holder = _hold(lambda: file_lock(lock, "joining the Whisper model"), release, held)
    try:
        with (
            pytest.raises(InitialisationTimeoutError) as raised,
            file_lock(lock, "joining the Whisper model", timeout=0.3),
        ):
            pass
    finally:
        release.set()
        holder.join()
    message = str(raised.value)
    assert "gave up after 0 s waiting for another Conveyor process joining the Whisper" in message
    assert "CONVEYOR_INIT_LOCK_TIMEOUT_SECONDS" in message


def test_sqlite_locks_live_beside_the_database(tmp_path: Path) -> None:
    with database_lock(f"sqlite:///{tmp_path / 'conveyor.db'}", "schema", "migrating"):
        lock = tmp_path / "conveyor.db.schema.lock"
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600  # private, like the database
    with database_lock("sqlite://", "schema", "migrating"):  # in memory: nothing to share
        pass


def test_postgresql_lock_is_an_advisory_lock_per_schema(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("advisory locks are PostgreSQL's")
    release, held = threading.Event(), threading.Event()
    holder = _hold(lambda: database_lock(database_url, "schema", "migrating"), release, held)
    try:
        # The waiter names the database (a file lock would name a folder).
        with (
            pytest.raises(InitialisationTimeoutError, match="migrating at postgresql"),
            database_lock(database_url, "schema", "migrating", timeout=0.3),
        ):
            pass
        with database_lock(database_url, "first-admin", "creating the first admin", timeout=5):
            pass  # another purpose is another lock
    finally:
        release.set()
        holder.join()
    with database_lock(database_url, "schema", "migrating", timeout=5):
        pass  # released with its holder


def test_replace_atomically_leaves_nothing_behind_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")

    def fail(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_atomically(target, fail)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    assert target.read_bytes() == b"old"
    replace_atomically(target, lambda path: path.write_bytes(b"new"))
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    assert target.read_bytes() == b"new"
