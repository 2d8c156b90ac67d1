"""Start several ``conveyor`` commands at the same instant, many times over, cheaply.

Run as ``python -m support.concurrent_commands SPEC.json RESULTS.json``. The process imports
Conveyor (and MLflow's stores) once, then for every run forks one child per command; each child
runs the real ``conveyor`` command line (``conveyor.cli.app.app``) with its own arguments and
console output in a file. All children of a run wait on one pipe and are released together, so
they start within microseconds of each other, closer than separate interpreters that each spend
seconds importing could. Commands that serve (``up``, ``serve``) are stopped with SIGTERM once
they are ready and the other commands of the run have finished.

SPEC: {"runs": [{"commands": [{"args": [...], "log": PATH, "ready": {"text": "..."} or
{"url": "http://.../healthz"} or null}], "timeout": seconds}]}
RESULTS: [[{"args", "exit_code", "seconds", "output"}, ...], ...], runs and commands in order.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any

STOP_SECONDS = 60.0


def _warm_imports() -> None:
    import mlflow.store.model_registry.sqlalchemy_store
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

    import conveyor.cli.app  # noqa: F401


def _child(args: list[str], log: Path, release: int) -> None:
    """In the forked child: wait for the release, run the command, exit with its code."""
    code = 1
    try:
        os.read(release, 1)  # returns when the parent closes the pipe's write end
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        from conveyor.cli.app import app

        try:
            app(args, prog_name="conveyor")
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _ready(command: dict[str, Any]) -> bool:
    ready = command.get("ready")
    if not ready:
        return True
    if "text" in ready:
        log = Path(command["log"])
        return log.exists() and ready["text"] in log.read_text(errors="replace")
    try:
        with urllib.request.urlopen(ready["url"], timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def _wait(pid: int, deadline: float) -> int | None:
    """The exit code of ``pid`` once it ends, or None (and the process killed) at the
    deadline."""
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _run(run: dict[str, Any]) -> list[dict[str, Any]]:
    commands = run["commands"]
    read_end, write_end = os.pipe()
    pids = []
    for command in commands:
        pid = os.fork()
        if pid == 0:
            os.close(write_end)
            _child(command["args"], Path(command["log"]), read_end)
        pids.append(pid)
    os.close(read_end)
    os.close(write_end)  # every child starts now
    started = time.monotonic()
    deadline = started + run.get("timeout", 300)
    codes: dict[int, int | None] = {}
    seconds: dict[int, float] = {}
    for index, command in enumerate(commands):
        if not command.get("ready"):
            codes[index] = _wait(pids[index], deadline)
            seconds[index] = time.monotonic() - started
    for index, command in enumerate(commands):
        if command.get("ready"):
            codes[index] = _stop_when_ready(pids[index], command, deadline)
            seconds[index] = time.monotonic() - started
    return [
        {"args": c["args"], "exit_code": codes[i], "seconds": seconds[i], "output": _output(c)}
        for i, c in enumerate(commands)
    ]


def _stop_when_ready(pid: int, command: dict[str, Any], deadline: float) -> int | None:
    while time.monotonic() < deadline and not _ready(command):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)  # it ended before it was ready
        time.sleep(0.1)
    os.kill(pid, signal.SIGTERM)
    return _wait(pid, time.monotonic() + STOP_SECONDS)


def _output(command: dict[str, Any]) -> str:
    log = Path(command["log"])
    return log.read_text(errors="replace") if log.exists() else ""


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    _warm_imports()
    results = [_run(run) for run in spec["runs"]]
    Path(sys.argv[2]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
