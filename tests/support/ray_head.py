"""A Ray head of the test's own (`ray start --head` on a free port, its own temp folder and
token) that the test can SIGKILL and start again on the same port. Its processes are found by
that temp folder, so the session's shared Ray and other tests' heads are never touched."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from support.up import free_port

RAY = Path(sys.executable).with_name("ray")


class RayHead:
    def __init__(self, num_cpus: int = 2) -> None:
        self.port = free_port()
        self.num_cpus = num_cpus
        # Short: Ray's socket paths under it must fit in 107 bytes.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rh-", dir="/tmp"))
        # Fixed at the first start: a head started again listens on the same ports.
        self.side_ports = {
            "--dashboard-port": free_port(),
            "--dashboard-agent-listen-port": free_port(),
            "--ray-client-server-port": free_port(),
        }
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> None:
        command = [str(RAY), "start", "--head", "--port", str(self.port)]
        command += ["--temp-dir", str(self.temp_dir), "--num-cpus", str(self.num_cpus)]
        command += ["--include-dashboard=false", "--disable-usage-stats"]
        for option, port in self.side_ports.items():
            command += [option, str(port)]
        environment = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | self.env
        done = subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"ray start failed:\n{done.stdout}\n{done.stderr}"

    def processes(self) -> list[psutil.Process]:
        """This head's GCS, raylet and helpers: every process naming its temp folder."""
        mine = []
        for process in psutil.process_iter(["cmdline"]):
            if str(self.temp_dir) in " ".join(process.info["cmdline"] or []):
                mine.append(process)
        return mine

    def kill(self) -> None:
        """SIGKILL the head's processes, as a machine losing power would; its workers follow."""
        processes = self.processes()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        _, alive = psutil.wait_procs(processes, timeout=30)
        assert not alive, f"still running after SIGKILL: {alive}"

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
