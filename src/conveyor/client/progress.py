"""The progress bar of :meth:`Client.wait`: Rich in a terminal (imported only when a bar is
shown); in a Jupyter kernel, an HTML ``<progress>`` bar updated in place through a display
handle, because Rich draws live output in Jupyter only through ipywidgets, which a notebook
server may lack (and nbclient does not run)."""

from __future__ import annotations

import html
import sys
import time
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


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython already loaded, a ZMQ shell)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class BarView:
    """One state of the notebook bar, as HTML and as text (for plain-text front ends)."""

    def __init__(self, label: str, done: int, total: int, seconds: float, counts: str) -> None:
        self.label, self.done, self.total, self.counts = label, done, total, counts
        self.elapsed = time.strftime("%H:%M:%S", time.gmtime(seconds))

    def __repr__(self) -> str:
        return f"{self.label} {self.done}/{self.total} {self.elapsed} {self.counts}".rstrip()

    def _repr_html_(self) -> str:
        text = html.escape(f"{self.done}/{self.total} {self.elapsed} {self.counts}".rstrip())
        return (
            f"<div>{html.escape(self.label)} <progress value='{self.done}' "
            f"max='{max(self.total, 1)}'></progress> {text}</div>"
        )


class NotebookBar:
    """The Rich ``Progress`` calls that :class:`WaitProgress` makes, drawn as a
    :class:`BarView` in the output cell and replaced on every update."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.counts = label, total, 0, ""
        self.started = time.monotonic()
        self.handle: Any = None

    def add_task(self, label: str, total: int, counts: str) -> int:
        self.label, self.total, self.counts = label, total, counts
        return 0

    def start(self) -> None:
        from IPython.display import display

        self.handle = display(self._view(), display_id=True)

    def update(self, _task: int, completed: int, counts: str) -> None:
        self.done, self.counts = completed, counts
        if self.handle is not None:
            self.handle.update(self._view())

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.update(self._view())

    def _view(self) -> BarView:
        seconds = time.monotonic() - self.started
        return BarView(self.label, self.done, self.total, seconds, self.counts)


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

    def _bar(self, console: Any) -> Any:
        if console is None and in_notebook():
            return NotebookBar(self.label, self.total)
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
