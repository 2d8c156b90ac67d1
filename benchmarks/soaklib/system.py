"""The system under soak: a PostgreSQL and a Ray head of its own, two controllers
(``conveyor up --no-api``) on that head, two API replicas (``conveyor serve`` with N worker
processes) behind HAProxy running deploy/haproxy/haproxy.cfg, all on one home. Each part can be
SIGKILLed and started again, as a supervisor (systemd, Kubernetes) would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
from serving_helpers import register_heart

from conveyor.auth.service import create_token
from conveyor.installation import Installation
from conveyor.models.registry import ModelRegistry
from conveyor.settings import load_settings
from support.haproxy import Balancer
from support.polling import wait_for
from support.ray_head import RayHead
from support.throwaway_postgres import ThrowawayPostgres, new_database, postgres_bin
from support.up import free_port


class Service:
    """One long-lived process of the system (and its children), started again on demand."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], folder: Path) -> None:
        self.name, self.command, self.env = name, command, env
        self.log = folder / f"{name}.out"
        self.starts = 0
        self.start()

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def tree(self) -> list[psutil.Process]:
        try:
            parent = psutil.Process(self.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the process and its children, as a machine or container dying would."""
        processes = self.tree()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(processes, timeout=30)
        self.process.wait(10)

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class ApiReplica(Service):
    def __init__(self, name: str, home: Path, workers: int, env: dict[str, str]) -> None:
        self.port, self.workers = free_port(), workers
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "conveyor.cli", "--home", str(home), "serve"]
        command += ["--port", str(self.port), "--workers", str(workers)]
        super().__init__(name, command, env, home.parent)

    def serving_processes(self) -> list[psutil.Process]:
        """The live uvicorn worker processes (not multiprocessing's resource tracker)."""
        workers = []
        for process in self.tree()[1:]:
            with contextlib.suppress(psutil.Error):
                spawned = "spawn_main" in " ".join(process.cmdline())
                if spawned and process.status() != psutil.STATUS_ZOMBIE:
                    workers.append(process)
        return workers

    def ready(self) -> bool:
        if len(self.serving_processes()) < self.workers:
            return False
        try:
            return httpx.get(f"{self.url}/readyz", timeout=3).status_code == 200
        except httpx.TransportError:
            return False


class SoakSystem:
    def __init__(self, folder: Path, workers: int, lease_seconds: float) -> None:
        self.folder, self.home = folder, folder / "home"
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise SystemExit("PostgreSQL's binaries (initdb, pg_ctl) are not installed")
        self.postgres = ThrowawayPostgres(bin_dir)
        self.postgres.start()
        self.database_url = new_database(self.postgres)
        settings = load_settings(
            self.home, database_url=self.database_url, lease_seconds=lease_seconds
        )
        self.installation = Installation(settings)  # migrates the store before the others start
        register_heart(ModelRegistry.for_home(self.home, None), folder / "heart-model")
        with self.installation.sessions.begin() as session:
            self.token = create_token(session, "soak", "operator")
        # Four logical CPUs on two cores: most steps sleep (noop), a call or a clip computes.
        self.head = RayHead(num_cpus=4)
        self.head.start()
        self.env = {
            **os.environ,
            "CONVEYOR_DATABASE_URL": self.database_url,
            "CONVEYOR_LEASE_SECONDS": str(lease_seconds),
            "CONVEYOR_FORWARDED_ALLOW_IPS": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            **self.head.env,
        }
        self.controllers = [self._controller(n) for n in (1, 2)]
        self.replicas = [ApiReplica(f"api{n}", self.home, workers, self.env) for n in (1, 2)]
        self.balancer = Balancer(folder, self.replicas)
        for replica in self.replicas:
            wait_for(replica.ready, 300, f"{replica.name} ready", 0.5)
        wait_for(self.balanced, 60, "both replicas UP in HAProxy", 0.5)

    def _controller(self, number: int) -> Service:
        command = [sys.executable, "-m", "conveyor.cli", "--home", str(self.home), "up"]
        command += ["--no-api", "--no-inbox", "--ray-address", self.head.address]
        command += ["--metrics-port", str(free_port())]
        return Service(f"controller{number}", command, self.env, self.folder)

    def balanced(self) -> bool:
        try:
            return set(self.balancer.states().values()) == {"UP"}
        except httpx.TransportError:
            return False

    def ray_workers(self) -> list[psutil.Process]:
        """The head's task worker processes: children of its raylet named ``ray::...``, but
        not its agents (``ray::RuntimeEnvAgent``, ``ray::DashboardAgent``), whose death takes
        the raylet down with them."""
        raylets = [p for p in self.head.processes() if "raylet" in p.name()]
        workers = []
        for raylet in raylets:
            with contextlib.suppress(psutil.Error):
                workers += [c for c in raylet.children() if _is_task_worker(c)]
        return workers

    def long_lived(self) -> dict[str, list[psutil.Process]]:
        """Every long-lived process by role, for the memory samples."""
        roles: dict[str, list[psutil.Process]] = {}
        for service in [*self.controllers, *self.replicas]:
            roles[service.name] = service.tree()
        roles["haproxy"] = [psutil.Process(self.balancer.process.pid)]
        roles["ray_head"] = [p for p in self.head.processes() if not p.name().startswith("ray::")]
        roles["postgres"] = _postmaster(self.postgres)  # backends come and go
        return roles

    def disk_usage(self) -> dict[str, int]:
        return {
            "home": _folder_bytes(self.home),
            "postgres": _folder_bytes(self.postgres.folder),
            "ray_head": _folder_bytes(self.head.temp_dir),
            "process_logs": sum(path.stat().st_size for path in self.folder.glob("*.out")),
        }

    def close(self) -> None:
        for service in [*self.replicas, *self.controllers]:
            service.stop()
        self.balancer.stop()
        self.installation.close()
        self.head.close()
        self.postgres.remove()


def _is_task_worker(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        name = process.name()
        return name.startswith("ray::") and not name.endswith("Agent")
    return False


def _postmaster(cluster: ThrowawayPostgres) -> list[psutil.Process]:
    pid_file = cluster.data / "postmaster.pid"
    try:
        return [psutil.Process(int(pid_file.read_text().split()[0]))]
    except (OSError, ValueError, psutil.NoSuchProcess):
        return []


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total
