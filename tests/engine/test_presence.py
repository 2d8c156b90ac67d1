"""Whether a controller serves a home: its pid file names a live process on this machine, or
another machine."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from conveyor.engine.presence import (
    PID_FILE,
    controller_alive,
    remove_pid_file,
    write_pid_file,
)


def test_this_process_counts_until_its_pid_file_is_removed(tmp_path: Path) -> None:
    assert not controller_alive(tmp_path)
    write_pid_file(tmp_path)
    assert controller_alive(tmp_path)
    remove_pid_file(tmp_path)
    assert not controller_alive(tmp_path)
    remove_pid_file(tmp_path)  # twice is fine


def test_a_dead_process_does_not_count_and_another_machines_does(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid_file = tmp_path / PID_FILE
    pid_file.write_text(json.dumps({"host": socket.gethostname(), "pid": int(finished.stdout)}))
    assert not controller_alive(tmp_path)
    pid_file.write_text(json.dumps({"host": "elsewhere.example", "pid": 1}))
    assert controller_alive(tmp_path)
    pid_file.write_text("not json")
    assert not controller_alive(tmp_path)
