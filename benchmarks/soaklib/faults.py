"""The faults the soak injects, one at a time, and the window each one spans: from the
injection until the part is back (started again, ready, UP in HAProxy) plus a settling time.
Errors users get inside a window are the fault's cost; outside every window they are a bug."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psutil
from sqlalchemy import select

from conveyor.store.models import Item, utcnow
from soaklib.system import SoakSystem
from support.polling import wait_for

KINDS = ("ray_worker", "controller", "api_replica", "serve_replica", "postgres", "ray_head")


@dataclass
class Fault:
    kind: str
    target: str
    started: float  # time.monotonic()
    started_at: datetime  # the store's clock (naive UTC), to compare with its rows
    recovered: float = 0.0
    ends: float = 0.0  # recovered + settling: the window's end
    details: dict[str, Any] = field(default_factory=dict)

    def covers(self, moment: float) -> bool:
        return self.started <= moment <= self.ends

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "back_after_s": round(self.recovered - self.started, 1),
            "window_s": round(self.ends - self.started, 1),
            **{k: len(v) if k == "held" else v for k, v in self.details.items()},
        }


class FaultInjector:
    """Injects ``KINDS`` in a shuffled cycle (each kind once before any repeats)."""

    def __init__(self, system: SoakSystem, rng: random.Random, options: Any) -> None:
        self.system, self.rng = system, rng
        self.postgres_down_s = options.postgres_down
        self.restart_delay_s = options.restart_delay
        self.settle_s = options.settle
        self.faults: list[Fault] = []
        self.errors: list[str] = []  # faults that could not be injected or recovered from
        self._cycle: list[str] = []

    def next_kind(self) -> str:
        if not self._cycle:
            self._cycle = list(KINDS)
            self.rng.shuffle(self._cycle)
        return self._cycle.pop()

    def inject(self, kind: str) -> Fault:
        """Injects ``kind`` and waits for the recovery; the window ends ``settle_s`` after
        (also when the recovery failed: the error is raised then)."""
        try:
            return getattr(self, f"_{kind}")()
        finally:
            if self.faults and self.faults[-1].recovered == 0.0:
                self.faults[-1].recovered = time.monotonic()
                self.faults[-1].ends = self.faults[-1].recovered + self.settle_s

    def _begin(self, kind: str, target: str) -> Fault:
        fault = Fault(kind, target, time.monotonic(), utcnow(), ends=float("inf"))
        self.faults.append(fault)
        return fault

    def _ray_worker(self) -> Fault:
        workers = self.system.ray_workers()
        busy = [w for w in workers if _name(w) not in ("", "ray::IDLE")]
        victim = self.rng.choice(busy or workers)
        fault = self._begin("ray_worker", _name(victim))
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.send_signal(signal.SIGKILL)
        fault.details["busy_workers"] = len(busy)
        return fault

    def _controller(self) -> Fault:
        controller = self.rng.choice(self.system.controllers)
        pid = controller.pid
        fault = self._begin("controller", controller.name)
        controller.kill()
        fault.details["held"] = self._leases_of(pid)
        time.sleep(self.restart_delay_s)
        controller.start()
        return fault

    def _leases_of(self, pid: int) -> dict[str, str]:
        """The killed controller's items and when their leases expire (ISO, naive UTC)."""
        query = select(Item.id, Item.lease_expires_at).where(
            Item.lease_owner.like(f"%:{pid}:%"), Item.status == "running"
        )
        with self.system.installation.sessions() as session:
            return {item: expires.isoformat() for item, expires in session.execute(query)}

    def _api_replica(self) -> Fault:
        replica = self.rng.choice(self.system.replicas)
        fault = self._begin("api_replica", replica.name)
        replica.kill()
        time.sleep(self.restart_delay_s)
        replica.start()
        self._wait_ready(replica)
        return fault

    def _serve_replica(self) -> Fault:
        replica = self.rng.choice(self.system.replicas)
        victim = self.rng.choice(replica.serving_processes())
        fault = self._begin("serve_replica", f"{replica.name} worker {victim.pid}")
        victim.send_signal(signal.SIGKILL)
        fault.details["killed_pid"] = victim.pid
        wait_for(lambda: _gone(victim), 30, "the worker gone", 0.2)
        self._wait_ready(replica)  # uvicorn's supervisor starts a new worker
        return fault

    def _wait_ready(self, replica: Any) -> None:
        wait_for(replica.ready, 300, f"{replica.name} ready again", 0.5)
        wait_for(self.system.balanced, 60, "both replicas UP in HAProxy", 0.5)

    def _postgres(self) -> Fault:
        fault = self._begin("postgres", "restart")
        self.system.postgres.stop()
        time.sleep(self.postgres_down_s)
        self.system.postgres.start()
        fault.details["down_s"] = round(time.monotonic() - fault.started, 1)
        return fault

    def _ray_head(self) -> Fault:
        fault = self._begin("ray_head", self.system.head.address)
        self.system.head.kill()
        fault.details["start_attempts"] = self._start_head()
        fault.details["down_s"] = round(time.monotonic() - fault.started, 1)
        return fault

    def _start_head(self, attempts: int = 3) -> int:
        """``ray start`` again; one that times out (seen at load average 50 on two cores) leaves
        a partial head, which is killed before the next attempt, as a supervisor would."""
        for attempt in range(1, attempts + 1):
            try:
                self.system.head.start(timeout=600)
                return attempt
            except (subprocess.TimeoutExpired, AssertionError):
                self.system.head.kill()
                if attempt == attempts:
                    raise
        return attempts


def _gone(process: psutil.Process) -> bool:
    """Ended (a zombie until its parent reaps it counts as ended)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _name(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return process.name()
    return ""
