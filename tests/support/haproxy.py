"""HAProxy running the shipped deploy/haproxy/haproxy.cfg in front of API replicas, its
addresses given by the environment as the file documents; used by the replicas test and the
soak benchmark."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import httpx

from support.up import free_port

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


class HasPort(Protocol):
    port: int


class Balancer:
    """HAProxy on a free port; server ``apiN`` is the Nth replica given."""

    def __init__(self, folder: Path, replicas: Sequence[HasPort]) -> None:
        self.port, self.stats_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "CONVEYOR_LB_BIND": f"127.0.0.1:{self.port}",
            "CONVEYOR_LB_STATS": f"127.0.0.1:{self.stats_port}",
            **{f"CONVEYOR_API_{n}": f"127.0.0.1:{r.port}" for n, r in enumerate(replicas, 1)},
        }
        self.log = folder / "haproxy.out"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(CONFIG)],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def states(self, backend: str = "conveyor_api") -> dict[str, str]:
        """Each server's state in ``backend`` as HAProxy's health checks see it (UP, DOWN...)."""
        rows = read_stats(f"http://127.0.0.1:{self.stats_port}", backend)
        return {name: row["status"] for name, row in rows.items()}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def read_stats(stats_url: str, backend: str = "conveyor_api") -> dict[str, dict[str, str]]:
    """``backend``'s rows (``conveyor_api``, checked on /readyz, or ``conveyor_predict``, on
    /healthz) of HAProxy's statistics (``stats_url`` + ``/;csv``) by server name:
    ``status`` (UP, DOWN, MAINT...), ``stot`` (requests it answered) and the other columns. The
    backend's own summary row (``BACKEND``) is left out."""
    answer = httpx.get(f"{stats_url}/;csv", timeout=5).text
    rows = csv.DictReader(io.StringIO(answer.removeprefix("# ")))
    return {
        row["svname"]: row
        for row in rows
        if row["pxname"] == backend and row["svname"] != "BACKEND"
    }
