"""Processes of the serving benchmark: servers in their own process groups, the MLflow venv, wrk.

Every server starts in a new session (its own process group), so that stopping it reaches the
workers it forks, and ``ServerProcess.stop`` runs from ``finally`` blocks: nothing is left
behind on an exception or Ctrl-C. ``serving_load.py`` turns SIGTERM into the same path.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import venv
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
MLFLOW_VENV = BENCHMARKS / ".venv-mlflow"
WRK_SCRIPT = BENCHMARKS / "serving_load.lua"
# The full mlflow of the project's mlflow-skinny, and the libraries the heart model was saved
# with (skops refuses to load across incompatible scikit-learn versions).
MLFLOW_PINNED = (
    ("mlflow", "mlflow-skinny"),
    ("scikit-learn", "scikit-learn"),
    ("skops", "skops"),
    ("numpy", "numpy"),
    ("pandas", "pandas"),
    ("scipy", "scipy"),
)


PIP_OPTIONS = ("--disable-pip-version-check",)
SETTLED_ANSWERS = 20
QUICK_SECONDS = 0.5
IDLE_WINDOW_SECONDS = 2.0
IDLE_CPU_SECONDS = 0.2  # CPU time of all its processes in that window: 10% of one CPU
IDLE_WINDOWS = 3


class BenchmarkError(RuntimeError):
    """The benchmark could not measure something; the message says what and where to look."""


# -- servers -------------------------------------------------------------------------------


class ServerProcess:
    """A server command in its own process group, logging to a file."""

    def __init__(self, name: str, command: list[str], log_path: Path, **popen: Any) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self.popen = popen
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.popen,
            )
        finally:
            log.close()
        return self

    @property
    def group(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchmarkError(
                f"{self.name} exited with code {self.process.returncode}; "
                f"its log {self.log_path} ends with:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, grace_seconds: float = 15.0) -> None:
        """SIGTERM to the whole group, SIGKILL to what is left after ``grace_seconds``."""
        if self.process is None:
            return
        group = self.process.pid  # the group id: start_new_session made it a group leader
        _signal_group(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace_seconds)
        _wait_group_gone(group, grace_seconds / 3)
        _signal_group(group, signal.SIGKILL)
        self.process.wait()
        self.process = None


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _wait_group_gone(group: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)


def post_json(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, Any]:
    """POST ``body``; the status and the decoded JSON answer (or its text)."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_until_answering(
    server: ServerProcess, url: str, body: bytes, timeout: float = 180.0
) -> tuple[Any, int]:
    """Poll ``url`` with ``body`` until it answers 200 quickly ``SETTLED_ANSWERS`` times in a
    row, each on a new connection; the first answer and how many 200s it took."""
    deadline = time.monotonic() + timeout
    last, first, quick, answered = "no answer yet", None, 0, 0
    while time.monotonic() < deadline and quick < SETTLED_ANSWERS:
        server.check_alive()
        started = time.monotonic()
        try:
            status, answer = post_json(url, body, timeout=10.0)
        except OSError as error:
            last, quick = str(error), 0
        else:
            if status == 200:
                first = answer if first is None else first
                answered += 1
                quick = quick + 1 if time.monotonic() - started < QUICK_SECONDS else 0
                continue
            last, quick = f"HTTP {status}: {answer}", 0
            if 400 <= status < 500 and status not in (404, 409):
                break  # a wrong request, not a server still starting
        time.sleep(0.5)
    if quick >= SETTLED_ANSWERS:
        return first, answered
    raise BenchmarkError(
        f"{server.name} did not answer {url} with 200 quickly ({last}); log {server.log_path}:\n"
        f"{server.log_tail()}"
    )


def wait_until_idle(server: ServerProcess, timeout: float = 240.0) -> None:
    """Wait until the server's processes are the same and use almost no CPU for
    ``IDLE_WINDOWS`` windows in a row: every worker has finished starting. A worker still
    loading accepts no connection, so wrk's connections, kept for a whole run, would all go to
    the workers already up; and uvicorn replaces a worker that has not answered its health
    check within 5 s of being spawned, which on a busy machine can go on for a while."""
    assert server.group is not None
    deadline = time.monotonic() + timeout
    calm = 0
    while time.monotonic() < deadline and calm < IDLE_WINDOWS:
        server.check_alive()
        before = group_usage(server.group)
        time.sleep(IDLE_WINDOW_SECONDS)
        after = group_usage(server.group)
        steady = after.pids == before.pids and after.cpu - before.cpu < IDLE_CPU_SECONDS
        calm = calm + 1 if steady else 0
    if calm < IDLE_WINDOWS:
        raise BenchmarkError(
            f"{server.name} did not settle (idle, same processes) in {timeout:g} s"
        )


# -- the MLflow venv -----------------------------------------------------------------------


def mlflow_requirements() -> list[str]:
    return [f"{name}=={version(installed)}" for name, installed in MLFLOW_PINNED]


def mlflow_bin() -> Path:
    """The MLflow venv's bin folder, creating the venv on first use (needs PyPI once)."""
    bin_folder = MLFLOW_VENV / "bin"
    marker = MLFLOW_VENV / ".installed"
    wanted = " ".join(mlflow_requirements())
    if (bin_folder / "mlflow").exists() and marker.exists() and marker.read_text() == wanted:
        return bin_folder
    print(f"creating {MLFLOW_VENV} with {wanted} ...", file=sys.stderr, flush=True)
    pip = [str(bin_folder / "python"), "-m", "pip", "install", "--quiet", *PIP_OPTIONS]
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(MLFLOW_VENV)
        subprocess.run(
            pip + mlflow_requirements(),
            check=True,
            timeout=1200,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", None) or str(error)
        raise BenchmarkError(
            f"could not create {MLFLOW_VENV} (no network to PyPI?): "
            + " | ".join(detail.strip().splitlines()[-3:])
        ) from error
    marker.write_text(wanted)
    return bin_folder


# -- wrk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    server: str
    concurrency: int
    seconds: float
    requests: int
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers + socket errors and timeouts
    server_cpu_seconds: float = 0.0  # every process of the server's group, during the run
    wrk_cpu_seconds: float = 0.0
    processes_changed: bool = False  # a worker died or was replaced: the CPU figures are off

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_cpu_us_per_request(self) -> float:
        if self.processes_changed or not self.requests:
            return math.nan
        return self.server_cpu_seconds / self.requests * 1e6

    @property
    def capacity_per_second(self) -> float:
        """Requests/s that the machine's CPUs would give if only this server and wrk ran:
        the CPU time of both per request, against every CPU."""
        used = self.server_cpu_seconds + self.wrk_cpu_seconds
        if self.processes_changed or used <= 0:
            return math.nan
        return (os.cpu_count() or 1) * self.requests / used


def run_wrk(
    server: str,
    url: str,
    bodies: Path,
    concurrency: int,
    seconds: float,
    threads: int = 1,
    server_group: int | None = None,
) -> LoadResult:
    """One wrk run (a separate process on loopback) with ``concurrency`` open connections;
    with ``server_group``, the CPU time that group and wrk used meanwhile."""
    command = [
        "wrk",
        f"--threads={max(1, min(threads, concurrency))}",
        f"--connections={concurrency}",
        f"--duration={seconds:g}s",
        "--timeout=10s",
        "--latency",
        f"--script={WRK_SCRIPT}",
        url,
        "--",
        str(bodies),
    ]
    server_before = group_usage(server_group) if server_group else None
    wrk_cpu = _children_cpu_seconds()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=seconds + 60
        )
    except FileNotFoundError as error:
        raise BenchmarkError("wrk is not installed: apt-get install wrk") from error
    except subprocess.CalledProcessError as error:
        raise BenchmarkError(
            f"wrk failed: {error.stderr.strip() or error.stdout.strip()}"
        ) from error
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise BenchmarkError(f"wrk printed no RESULT line:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(lines[-1].removeprefix("RESULT "))
    server_cpu, restarted = 0.0, False
    if server_group and server_before:
        server_after = group_usage(server_group)
        server_cpu = server_after.cpu - server_before.cpu
        restarted = server_after.pids != server_before.pids
    wrk_cpu = _children_cpu_seconds() - wrk_cpu
    socket_errors = sum(
        figures[key] for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return LoadResult(
        server=server,
        concurrency=concurrency,
        seconds=figures["duration_us"] / 1e6,
        requests=figures["requests"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=figures["non_2xx"] + socket_errors,
        server_cpu_seconds=server_cpu,
        wrk_cpu_seconds=wrk_cpu,
        processes_changed=restarted,
    )


@dataclass(frozen=True)
class GroupUsage:
    pids: frozenset[int]
    cpu: float  # user + system seconds of those processes


def group_usage(group: int) -> GroupUsage:
    """The live processes of a process group and their CPU time (Linux /proc)."""
    pids, ticks = set(), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group:  # after "pid (comm)": state, ppid, pgrp, ...
            pids.add(int(stat.parent.name))
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return GroupUsage(frozenset(pids), ticks / os.sysconf("SC_CLK_TCK"))


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
