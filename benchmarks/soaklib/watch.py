"""Samples taken while the soak runs: resident memory of every long-lived process (by role and
pid, so a restarted process is a new series), disk usage of the system's folders, and the load
average. Judged at the end: memory flat after warm-up, disk bounded."""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections import defaultdict
from typing import Any

import psutil

from soaklib.system import SoakSystem

MIB = 1 << 20


class Watcher:
    def __init__(self, system: SoakSystem, interval: float) -> None:
        self.system, self.interval = system, interval
        self.memory: dict[tuple[str, int], list[tuple[float, int]]] = defaultdict(list)
        self.disk: list[tuple[float, dict[str, int]]] = []
        self.load: list[tuple[float, float, float]] = []
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)

    def sample(self) -> None:
        now = time.monotonic()
        for role, processes in self.system.long_lived().items():
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    rss = process.memory_info().rss
                    if rss > 0:  # 0: a zombie, killed and not reaped yet
                        self.memory[(role, process.pid)].append((now, rss))
        self.disk.append((now, self.system.disk_usage()))
        self.load.append(os.getloadavg())

    def memory_report(self, warm_up_s: float, min_judged_s: float) -> list[dict[str, Any]]:
        """Per process: RSS just after its warm-up and at the end; judged only when it lived
        ``min_judged_s`` after warming up."""
        rows = []
        for (role, pid), samples in sorted(self.memory.items()):
            born = samples[0][0]
            warm = [rss for t, rss in samples if t >= born + warm_up_s]
            lived = samples[-1][0] - born - warm_up_s
            row: dict[str, Any] = {"role": role, "pid": pid, "lived_s": round(lived + warm_up_s)}
            if lived >= min_judged_s and len(warm) >= 6:
                first, last = statistics.median(warm[:3]), statistics.median(warm[-3:])
                row |= {
                    "after_warm_up_mib": round(first / MIB, 1),
                    "end_mib": round(last / MIB, 1),
                    "growth_pct": round(100 * (last - first) / first, 1),
                }
                if row["growth_pct"] >= 10:  # one step (a model loaded) or a steady leak?
                    row["every_minute_mib"] = [round(rss / MIB) for _, rss in samples[::6]]
            rows.append(row)
        return rows

    def disk_report(self) -> dict[str, Any]:
        first, last = self.disk[0][1], self.disk[-1][1]
        half = self.disk[len(self.disk) // 2][1]
        return {
            part: {
                "start_mib": round(first[part] / MIB, 1),
                "half_mib": round(half[part] / MIB, 1),
                "end_mib": round(last[part] / MIB, 1),
            }
            for part in last
        }

    def load_report(self) -> dict[str, float]:
        one_minute = [sample[0] for sample in self.load]
        return {
            "min": round(min(one_minute), 2),
            "mean": round(statistics.mean(one_minute), 2),
            "max": round(max(one_minute), 2),
        }
