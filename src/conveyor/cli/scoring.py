"""``conveyor score``: a registered model over files of any size, with a progress bar."""

from __future__ import annotations

import getpass
import re
import time
from typing import TYPE_CHECKING

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from conveyor.cli.state import CliState, error_console
from conveyor.errors import InputRejectedError

if TYPE_CHECKING:
    from conveyor.scoring.jobs import JobView
    from conveyor.scoring.parts import PartResult

SIZE = re.compile(r"(?i)^\s*(\d+)\s*([kmg]i?b?)?\s*$")
UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def register(app: typer.Typer) -> None:
    app.command()(score)


def score(
    context: typer.Context,
    model: str = typer.Argument(..., help="Registered model, e.g. heart."),
    inputs: list[str] = typer.Argument(
        ..., help="CSV, JSONL or Parquet files, globs or folders; local or fsspec URLs."
    ),
    output: str = typer.Option(..., "--output", "-o", help="Output folder (local or a URL)."),
    version: int = typer.Option(None, "--version", help="Model version (default: champion)."),
    alias: str = typer.Option(None, "--alias", help="Model alias, e.g. challenger."),
    columns: str = typer.Option(
        None, "--columns", help="Input columns to copy to the output, a,b,c (default: all)."
    ),
    output_format: str = typer.Option("parquet", "--format", help="parquet or csv."),
    max_rejects: int = typer.Option(
        None, "--max-rejects", help="Fail the job once more rows than this are rejected."
    ),
    block_size: str = typer.Option(
        "8MiB", "--block-size", help="Bytes of input per part (the unit of work and resume)."
    ),
    parallelism: int = typer.Option(
        None, "--parallelism", help="Parts scored at once (default: the Ray cluster's CPUs)."
    ),
) -> None:
    """Score files with a model version; the same command resumes an interrupted job."""
    from conveyor.scoring.service import BatchScoring, ScoreRequest

    state: CliState = context.obj
    request = ScoreRequest(
        model=model,
        inputs=tuple(inputs),
        output=output,
        version=version,
        alias=alias,
        columns=tuple(c.strip() for c in columns.split(",") if c.strip()) if columns else None,
        output_format=output_format,
        max_rejects=max_rejects,
        block_size=parse_size(block_size),
        parallelism=parallelism,
        requested_by=f"cli:{getpass.getuser()}",
    )
    service = BatchScoring(state.installation)
    prepared = service.prepare(request)
    view = prepared.view
    if prepared.loaded is None:
        error_console.print(f"{view.output} was scored already (job {view.id}).")
        _summary(view, 0.0)
        return
    verb = "resuming" if prepared.resumed else "scoring"
    error_console.print(
        f"{verb} job {view.id}: {view.model} v{view.version} ({prepared.loaded.form}), "
        f"{len(prepared.pending):,} of {view.parts_total:,} part(s) to do -> {view.output}"
    )
    started = time.perf_counter()
    service.connect_ray()
    ray_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with _progress() as progress:
        done_rows = view.rows_scored + view.rows_rejected
        task = progress.add_task("rows", total=view.rows_total, completed=0)
        progress.update(task, completed=done_rows)

        def advance(result: PartResult, _: JobView) -> None:
            progress.advance(task, result.rows_scored + result.rows_rejected)

        final = service.run(prepared, advance)
    _summary(final, time.perf_counter() - started, ray_seconds)


def _summary(view: JobView, seconds: float, ray_seconds: float = 0.0) -> None:
    rate = f" in {seconds:.1f} s" if seconds else ""
    if ray_seconds:
        rate += f" (after {ray_seconds:.1f} s to start or join Ray)"
    rejects = f"; rejects in {view.output}/_rejects.csv" if view.rows_rejected else ""
    error_console.print(
        f"{view.model} v{view.version}: {view.rows_scored:,} row(s) scored, "
        f"{view.rows_rejected:,} rejected{rate} -> {view.output}{rejects}"
    )


def parse_size(text: str) -> int:
    found = SIZE.match(text)
    if not found:
        raise InputRejectedError(f"{text!r} is not a size; write e.g. 32MiB, 512k or 1048576.")
    unit = (found.group(2) or "")[:1].lower()
    return int(found.group(1)) * UNITS[unit]


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s", style="progress.data.speed")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeRemainingColumn(),
        console=error_console,
        transient=False,
    )
