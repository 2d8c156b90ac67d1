"""A real ``mlflow server`` on loopback, as a cluster's shared tracking server.

Conveyor depends on ``mlflow-skinny``, which has no server, and the full ``mlflow`` would change
the project's pinned libraries; so the server runs from its own virtual environment,
created on first use with the ``mlflow`` version of the installed ``mlflow-skinny`` (PyPI needed
once) in the user's cache folder, ``~/.cache/conveyor-tests/venv-mlflow-VERSION``, so that a fresh
clone does not pay the minute pip takes again (or the executable ``$CONVEYOR_TEST_MLFLOW``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "conveyor-tests"
MLFLOW_VERSION = version("mlflow-skinny")
MLFLOW_VENV = CACHE / f"venv-mlflow-{MLFLOW_VERSION}"
COMPLETE = MLFLOW_VENV / ".complete"  # written last: a venv cut off mid-install is rebuilt


def mlflow_executable() -> Path:
    configured = os.environ.get("CONVEYOR_TEST_MLFLOW")
    if configured:
        return Path(configured)
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "venv-mlflow.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions at once build it once
        if not COMPLETE.exists():
            _create_venv()
    return MLFLOW_VENV / "bin" / "mlflow"


def _create_venv() -> None:
    wanted = f"mlflow=={MLFLOW_VERSION}"
    shutil.rmtree(MLFLOW_VENV, ignore_errors=True)
    commands = [
        [sys.executable, "-m", "venv", str(MLFLOW_VENV)],
        [str(MLFLOW_VENV / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", wanted],
    ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            reason = f"could not install {wanted} into {MLFLOW_VENV}: {done.stderr[-2000:]}"
            pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    COMPLETE.touch()


class MlflowServer:
    """``mlflow server`` with a SQLite store and proxied artifacts in ``folder``."""

    def __init__(self, folder: Path, port: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{port}"
        self.log = folder / "mlflow-server.out"
        command = [str(mlflow_executable()), "server", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", "1"]
        command += ["--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
        command += ["--artifacts-destination", str(folder / "artifacts"), "--serve-artifacts"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_until_up(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"mlflow server exited:\n{self.output()}"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"mlflow server did not answer /health:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
