"""`conveyor submit`'s output and the streamed ``--records`` file: a progress bar on stderr,
a summary, and item ids only where asked for (``--json`` on stdout, ``-o FILE``), written as
each batch commits so that memory never holds them all."""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from conveyor.cli.state import error_console
from conveyor.errors import InputRejectedError
from conveyor.ingest.records import (
    FILE_BATCH_RECORDS,
    RecordBatch,
    RecordSummary,
    jsonl_batches,
)

if TYPE_CHECKING:
    from conveyor.ingest.submit import Submission, Submitter


class SubmissionSink:
    """Where submissions go as they commit: a JSON array on stdout (``--json``), an ids file
    (``-o``), and memory only when ``--wait`` needs the ids."""

    def __init__(self, as_json: bool, ids_path: Path | None, keep_ids: bool) -> None:
        self.as_json = as_json
        self.kept_ids: list[str] = []
        self._keep_ids = keep_ids
        self._ids_file: IO[str] | None = ids_path.open("w") if ids_path else None
        self._written = 0
        if as_json:
            sys.stdout.write("[")

    def add(self, submissions: list[Submission]) -> None:
        if self._keep_ids:
            self.kept_ids.extend(s.item_id for s in submissions)
        if self._ids_file is not None:
            self._ids_file.writelines(f"{s.item_id}\n" for s in submissions)
        if self.as_json:
            for submission in submissions:
                separator = ", " if self._written else ""
                sys.stdout.write(separator + json.dumps(submission.__dict__))
                self._written += 1

    def close(self) -> None:
        if self._ids_file is not None:
            self._ids_file.close()
        if self.as_json:
            sys.stdout.write("]\n")
            sys.stdout.flush()


def submit_record_file(
    submitter: Submitter, pipeline: str, path: Path, force: bool, sink: SubmissionSink
) -> RecordSummary:
    """Stream a JSON-lines file into items, batch by batch, with a progress bar on stderr."""
    if not path.is_file():
        raise InputRejectedError(f"{path} is not a readable file")
    started = time.perf_counter()
    with path.open("rb") as lines, _progress() as progress, _without_cycle_collection():
        task = progress.add_task("records", total=path.stat().st_size, records=0)

        done = [0]

        def committed(batch: RecordBatch, submissions: list[Submission]) -> None:
            sink.add(submissions)
            done[0] += len(submissions)
            progress.update(task, completed=batch.bytes_read, records=done[0])

        batches = jsonl_batches(lines, str(path), FILE_BATCH_RECORDS)
        summary = submitter.submit_record_batches(pipeline, batches, force, "cli", committed)
    summary.seconds = time.perf_counter() - started
    return summary


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Parsed records hold no reference cycles, yet the collector's passes over each batch's
    objects took 12-20 % of the command's CPU. The command owns its process, so nothing
    else waits on the collection; it is back on (if it was) when the file is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]submitting[/]"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[records]:,} records"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=error_console,
        transient=True,
        disable=not error_console.is_terminal,
    )


def print_record_summary(summary: RecordSummary, path: Path) -> None:
    rate = summary.records / summary.seconds if summary.seconds else 0.0
    error_console.print(
        f"{path.name}: {summary.records:,} record(s) in {summary.seconds:.1f} s "
        f"({rate:,.0f} records/s): {summary.accepted:,} accepted, "
        f"{summary.duplicates:,} already known"
    )


def stopped_message(summary: RecordSummary) -> str:
    """What a bad line means for the user: what was kept, and how to go on."""
    assert summary.error is not None
    return (
        f"{summary.error} The {summary.records:,} record(s) before it were submitted "
        f"({summary.accepted:,} accepted, {summary.duplicates:,} already known); nothing from "
        "that line on was. Fix the line and submit the same file again: the records already "
        "accepted are recognised as duplicates, not submitted twice."
    )
