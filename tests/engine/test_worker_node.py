"""`conveyor worker` keeps its Ray node in the cluster: it starts `ray start --block` again
whenever it ends without being asked to, once the head answers, one line per attempt; SIGTERM
stops it with exit code 0. Here the node is a stand-in command, so no Ray runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conveyor.engine import worker_node
from conveyor.engine.worker_node import WorkerNode, next_pause
from support.polling import wait_for
from support.up import free_port

ENDS_AT_ONCE = [sys.executable, "-c", "import sys; sys.exit(1)"]
RUNS_LONG = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_node, "FIRST_PAUSE_SECONDS", 0.05)
    monkeypatch.setattr(worker_node, "MAX_PAUSE_SECONDS", 0.2)


def test_pauses_double_up_to_the_most_and_start_over_after_a_stable_run() -> None:
    pauses = [next_pause(None, 0.0)]
    for _ in range(5):
        pauses.append(next_pause(pauses[-1], 1.0))
    assert pauses == [0.05, 0.1, 0.2, 0.2, 0.2, 0.2]
    assert next_pause(0.2, worker_node.STABLE_SECONDS) == 0.05


def _run_in_thread(node: WorkerNode) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(node.run()), daemon=True)
    thread.start()
    return thread, codes


def test_a_node_that_ends_is_started_again_until_stopped() -> None:
    lines: list[str] = []
    node = WorkerNode(ENDS_AT_ONCE, "head:6379", lines.append, head_error=lambda _: None)
    thread, codes = _run_in_thread(node)
    wait_for(lambda: sum("joining" in line for line in lines) >= 3, 30, f"3 attempts: {lines}")
    node.stop()
    thread.join(10)
    assert codes == [0]
    assert lines[0] == "attempt 1: joining the Ray cluster at head:6379"
    assert "the Ray node ended with exit code 1" in lines[1]
    assert lines[-1] == "stopped"


def test_it_waits_for_the_head_to_answer_before_starting_the_node() -> None:
    lines: list[str] = []
    answers = iter([ConnectionRefusedError(111, "refused")] * 2)
    node = WorkerNode(RUNS_LONG, "head:6379", lines.append, lambda _: next(answers, None))
    thread, codes = _run_in_thread(node)
    wait_for(lambda: node.child is not None, 30, f"the node started: {lines}")
    node.stop()
    thread.join(10)
    assert codes == [0]
    assert [line.split(":")[0] for line in lines[:3]] == ["attempt 1", "attempt 2", "attempt 3"]
    assert "does not answer ([Errno 111] refused); trying again in 0.05 s" in lines[0]
    assert lines[2] == "attempt 3: joining the Ray cluster at head:6379"
    assert node.child.returncode == -signal.SIGTERM  # the running node was stopped


def test_a_bad_option_is_not_retried() -> None:
    lines: list[str] = []
    usage = [sys.executable, "-c", "import sys; sys.exit(2)"]
    node = WorkerNode(usage, "head:6379", lines.append, head_error=lambda _: None)
    assert node.run() == 2
    assert "refused its options" in lines[-1]


def test_conveyor_worker_retries_a_head_that_is_down_and_stops_on_sigterm(tmp_path: Path) -> None:
    head = f"127.0.0.1:{free_port()}"  # nothing listens there
    log = tmp_path / "worker.out"
    command = [sys.executable, "-m", "conveyor.cli", "worker", "--head", head]
    env = os.environ | {"PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: log.read_text().count("does not answer") >= 2, 60, "two attempts")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert f"conveyor worker: attempt 1: the Ray head at {head} does not answer" in text, text
    assert f"attempt 2: the Ray head at {head} does not answer" in text
    assert text.rstrip().endswith("conveyor worker: stopped"), text
