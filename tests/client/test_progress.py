"""The wait bar: finished items out of all, with the counts by status."""

from __future__ import annotations

import io

from rich.console import Console

from conveyor.client.progress import (
    BarView,
    NotebookBar,
    WaitProgress,
    describe,
    finished_count,
    in_notebook,
)

STATUSES = {"a": "succeeded", "b": "failed", "c": "running", "d": "queued", "e": "succeeded"}


def test_counts_list_final_states_first() -> None:
    assert describe(STATUSES) == "2 succeeded, 1 failed, 1 running, 1 queued"
    assert finished_count(STATUSES) == 3


def test_the_bar_draws_finished_out_of_total() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with WaitProgress(5, console=console) as bar:
        bar.update(STATUSES)
    drawn = out.getvalue()
    assert "3/5" in drawn and "2 succeeded, 1 failed" in drawn


def test_disabled_draws_nothing() -> None:
    with WaitProgress(5, enabled=False) as bar:
        bar.update(STATUSES)
    assert bar.progress is None


def test_the_notebook_bar_is_escaped_html_and_text() -> None:
    view = BarView("<waiting>", 3, 5, 75.0, "2 succeeded, 1 failed")
    assert repr(view) == "<waiting> 3/5 00:01:15 2 succeeded, 1 failed"
    shown = view._repr_html_()
    assert "&lt;waiting&gt;" in shown and "<waiting>" not in shown
    assert "<progress value='3' max='5'></progress> 3/5 00:01:15 2 succeeded" in shown


def test_outside_a_kernel_the_bar_is_rich() -> None:
    assert not in_notebook()
    with WaitProgress(2) as bar:
        bar.update({"a": "running"})
    assert not isinstance(bar.progress, NotebookBar)
