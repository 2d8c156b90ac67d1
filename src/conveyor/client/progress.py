"""The progress bar of :meth:`Client.wait`: Rich, which draws in a terminal and in a Jupyter
notebook alike (imported only when a bar is shown)."""

from __future__ import annotations

from collections import Counter
from types import TracebackType
from typing import Any

from conveyor.client.models import FINAL_STATUSES


def describe(statuses: dict[str, str]) -> str:
    """``3 succeeded, 1 failed, 2 running``: final counts first, then the rest."""
    counts = Counter(statuses.values())
    order = ["succeeded", "failed", "cancelled", "running", "retrying", "queued"]
    keys = [k for k in order if counts[k]] + sorted(k for k in counts if k not in order)
    return ", ".join(f"{counts[k]} {k}" for k in keys)


def finished_count(statuses: dict[str, str]) -> int:
    return sum(status in FINAL_STATUSES for status in statuses.values())


class WaitProgress:
    """A bar of finished items out of all, with the counts by status; does nothing when
    ``enabled`` is false."""

    def __init__(
        self, total: int, enabled: bool = True, label: str = "waiting", console: Any = None
    ) -> None:
        self.total, self.label = total, label
        self.progress: Any = None
        if enabled:
            self.progress = self._bar(console)
            self.task = self.progress.add_task(label, total=total, counts="")

    @staticmethod
    def _bar(console: Any) -> Any:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[counts]}"),
            console=console,
        )

    def update(self, statuses: dict[str, str]) -> None:
        if self.progress is not None:
            done = finished_count(statuses)
            self.progress.update(self.task, completed=done, counts=describe(statuses))

    def __enter__(self) -> WaitProgress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.progress is not None:
            self.progress.stop()
