"""A `conveyor serve` process SIGKILLed while answering loses no prediction from the log: every
prediction a client got an answer for is in the log exactly once after a restart (the restarted
process replays the journal the killed one left, serving/journal.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_helpers import interrupt
from sqlalchemy import func, select

from conveyor.serving.tables import Prediction
from conveyor.store.database import connect
from support.polling import wait_for
from support.up import free_port

pytestmark = pytest.mark.slow
ANSWERS_BEFORE_KILL = 300
CLIENTS = 4


@contextmanager
def _serve(home: Path, database_url: str, log: Path) -> Iterator[tuple[Any, str]]:
    port = free_port()
    command = [sys.executable, "-m", "conveyor.cli", "--home", str(home), "serve"]
    command += ["--port", str(port), "--no-auth"]
    environment = os.environ | {"CONVEYOR_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/v1/endpoints/heart/predict"
    try:
        yield process, url
    finally:
        interrupt(process)


def _wait_answering(process: Any, url: str, record: dict[str, Any], log: Path) -> None:
    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.post(url, json=record, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, 120, "conveyor serve to answer", 0.3)


def _predict_until_killed(url: str, record: dict[str, Any], answered: list[str]) -> None:
    with httpx.Client(timeout=5) as client:
        while True:
            try:
                response = client.post(url, json=record)
            except httpx.TransportError:
                return
            assert response.status_code == 200, response.text
            answered.extend(p["id"] for p in response.json()["predictions"])


def _logged(database_url: str, ids: list[str]) -> dict[str, int]:
    engine = connect(database_url)
    try:
        with engine.connect() as connection:
            query = select(Prediction.id, func.count()).group_by(Prediction.id)
            counts = dict(connection.execute(query.where(Prediction.id.in_(ids))).all())
    finally:
        engine.dispose()
    return {str(key): int(value) for key, value in counts.items()}


def test_every_answer_is_logged_once_after_a_sigkill(
    model_home: Path, tmp_path: Path, database_url: str, heart_record: dict[str, Any]
) -> None:
    # The module's home for both databases: a segment an earlier case left could only add
    # rows this case did not answer, which the checks below leave out.
    home, log = model_home, tmp_path / "serve.out"
    answered: list[str] = []
    with _serve(home, database_url, log) as (process, url):
        _wait_answering(process, url, heart_record, log)
        clients = [
            threading.Thread(target=_predict_until_killed, args=(url, heart_record, answered))
            for _ in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        wait_for(lambda: len(answered) >= ANSWERS_BEFORE_KILL, 60, "answers", 0.005)
        process.kill()  # SIGKILL while the clients are still being answered
        process.wait()
        for client in clients:
            client.join(timeout=30)
    journal = home / "spool" / "journal"
    # Nearly always some: what was answered since the log thread's last write (every 200 ms).
    before = len(_logged(database_url, answered))
    print(f"answered {len(answered)}, logged before the restart {before}")
    with _serve(home, database_url, log) as (process, url):  # the restart replays the journal
        _wait_answering(process, url, heart_record, log)
        wait_for(lambda: len(_logged(database_url, answered)) == len(answered), 30, "the whole log")
    logged = _logged(database_url, answered)
    assert set(logged) == set(answered)
    assert set(logged.values()) == {1}, "a prediction logged twice"
    assert not any(path.stat().st_size for path in journal.glob("*.jsonl"))
