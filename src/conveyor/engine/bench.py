"""The ``noop`` benchmark: N record items through the full durable path."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the installation wires the engine, not the other way round
    from conveyor.engine.controller import Controller
    from conveyor.installation import Installation


@dataclass(frozen=True)
class BenchResult:
    items: int
    submit_seconds: float
    run_seconds: float
    succeeded: int

    @property
    def items_per_second(self) -> float:
        return self.items / self.run_seconds if self.run_seconds else 0.0

    @property
    def overhead_ms_per_item(self) -> float:
        return 1000 * self.run_seconds / self.items if self.items else 0.0


def run_noop_benchmark(
    installation: Installation,
    items: int,
    controller: Controller | None = None,
    sleep_ms: int = 0,
) -> BenchResult:
    controller = controller or installation.controller()
    started = time.perf_counter()
    records = [{"n": n, "sleep_ms": sleep_ms, "run": started} for n in range(items)]
    installation.submitter.submit_records("noop", records, force=True, source="bench")
    submitted = time.perf_counter()
    before = controller.stats.succeeded
    controller.run_until_idle()
    finished = time.perf_counter()
    return BenchResult(
        items=items,
        submit_seconds=submitted - started,
        run_seconds=finished - submitted,
        succeeded=controller.stats.succeeded - before,
    )
