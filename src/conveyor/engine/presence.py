"""Telling whether a controller (``conveyor up``) serves this home, via a pid file."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

PID_FILE = "controller.json"


def write_pid_file(home: Path) -> Path:
    path = home / PID_FILE
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    return path


def remove_pid_file(home: Path) -> None:
    (home / PID_FILE).unlink(missing_ok=True)


def controller_alive(home: Path) -> bool:
    path = home / PID_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if info.get("host") != socket.gethostname():
        return True  # another machine's controller: assume it runs
    try:
        os.kill(int(info["pid"]), 0)
    except (ProcessLookupError, ValueError, KeyError):
        return False
    except PermissionError:
        return True
    return True
