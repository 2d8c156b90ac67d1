"""Commands about items: submit, status, items, show, retry, cancel, results, inbox."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from conveyor.cli.state import CliState, console
from conveyor.errors import InputRejectedError

if TYPE_CHECKING:
    from conveyor.cli.records import SubmissionSink
    from conveyor.ingest.submit import Submitter

STATUS_STYLE = {
    "queued": "cyan",
    "running": "blue",
    "retrying": "yellow",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def register(app: typer.Typer) -> None:
    for command in (submit, status, items, show, retry, cancel, results, inbox, pipelines):
        app.command()(command)


def submit(
    context: typer.Context,
    paths: list[Path] = typer.Argument(None, help="Files to submit."),
    pipeline: str = typer.Option(..., "--pipeline", "-p", help="Pipeline to run."),
    records: Path = typer.Option(
        None, "--records", help="A JSON-lines file of records, streamed in batches."
    ),
    references: list[str] = typer.Option(
        None,
        "--ref",
        help="A file to process where it lies, not copied: a path on a shared mount or a URL "
        "(s3://...) inside reference_roots. Repeat for more.",
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait until every item is final."),
    force: bool = typer.Option(False, "--force", help="Process even if already submitted."),
    as_json: bool = typer.Option(False, "--json", help="Print every submission as JSON."),
    ids_path: Path = typer.Option(
        None, "--output", "-o", help="Write the item ids to this file, one a line."
    ),
) -> None:
    """Submit files, files by reference (--ref) or records to a pipeline."""
    from conveyor.cli.progress import wait_for_items
    from conveyor.cli.records import SubmissionSink
    from conveyor.models.training import refuse_training_records

    state: CliState = context.obj
    submitter = state.installation.submitter
    refuse_training_records(submitter.registry.get(pipeline))
    if not paths and records is None and not references:
        raise InputRejectedError("give files to submit, --ref PATH_OR_URL, or --records FILE.jsonl")
    sink = SubmissionSink(as_json, ids_path, keep_ids=wait)
    try:
        _submit_all(submitter, pipeline, paths or [], records, force, sink, references or [])
    finally:
        sink.close()
    if wait:
        final = wait_for_items(state.installation, sink.kept_ids)
        if any(status != "succeeded" for status in final.values()):
            raise typer.Exit(1)


def _submit_all(
    submitter: Submitter,
    pipeline: str,
    paths: list[Path],
    records: Path | None,
    force: bool,
    sink: SubmissionSink,
    references: list[str],
) -> None:
    from conveyor.cli.records import print_record_summary, stopped_message, submit_record_file

    files = [submitter.submit_file(pipeline, path, force=force) for path in paths]
    files += [
        submitter.submit_reference(pipeline, location, force=force, source="cli")
        for location in references
    ]
    sink.add(files)
    if files and not sink.as_json:
        fresh = sum(not s.duplicate for s in files)
        console.print(f"accepted {fresh} file(s), {len(files) - fresh} already known")
        for s in files:
            note = " (duplicate: earlier item)" if s.duplicate else ""
            console.print(f"  {s.item_id}  {s.input_name}{note}")
    if records is None:
        return
    summary = submit_record_file(submitter, pipeline, records, force, sink)
    print_record_summary(summary, records)
    if summary.error is not None:
        raise InputRejectedError(stopped_message(summary))


def status(
    context: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable output."),
) -> None:
    """Counts of items by state, per pipeline."""
    state: CliState = context.obj
    counts = state.installation.item_counts()
    if as_json:
        print(json.dumps(counts))
        return
    table = Table(title="Items by state")
    table.add_column("pipeline")
    for name in STATUS_STYLE:
        table.add_column(name, justify="right", style=STATUS_STYLE[name])
    for pipeline, by_status in sorted(counts.items()):
        table.add_row(pipeline, *(str(by_status.get(s, 0)) for s in STATUS_STYLE))
    console.print(table)


def items(
    context: typer.Context,
    pipeline: str = typer.Option(None, "--pipeline", "-p"),
    status_filter: str = typer.Option(None, "--status", "-s"),
    search: str = typer.Option(None, "--search", help="Text in the input name or id."),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List items, newest first."""
    from conveyor.store import queries
    from conveyor.store.queries import ItemFilter

    state: CliState = context.obj
    filters = ItemFilter(pipeline=pipeline, status=status_filter, text=search)
    with state.installation.sessions() as session:
        found = queries.list_items(session, filters, limit)
    if as_json:
        print(json.dumps([_item_summary(i) for i in found], default=str))
        return
    table = Table()
    for column in ("id", "pipeline", "input", "status", "created", "error"):
        table.add_column(column, overflow="fold")
    for item in found:
        table.add_row(
            item.id[:12],
            item.pipeline,
            item.input_name or "record",
            f"[{STATUS_STYLE.get(item.status, '')}]{item.status}[/]",
            _time(item.created_at),
            (item.error or "")[:80],
        )
    console.print(table)


def _item_summary(item: Any) -> dict[str, Any]:
    """The API's view of an item (same fields, same formats), plus where its files are."""
    from conveyor.api.schemas import ItemOut

    return ItemOut.of(item).model_dump(mode="json") | {"work_dir": item.work_dir}


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def show(
    context: typer.Context,
    item_id: str = typer.Argument(..., help="Item id or a unique prefix."),
    as_json: bool = typer.Option(False, "--json"),
    logs: bool = typer.Option(True, "--logs/--no-logs", help="Print each step's logs."),
) -> None:
    """One item: its steps with attempts, timings and logs, and its result."""
    from conveyor.api.schemas import StepRunOut
    from conveyor.store import queries

    state: CliState = context.obj
    with state.installation.sessions() as session:
        item = queries.get_item(session, item_id)
        runs = queries.step_runs(session, item.id)
        result = queries.result_of(session, item.id)
    if as_json:
        payload = _item_summary(item) | {
            "steps": [StepRunOut.of(r).model_dump(mode="json") for r in runs],
            "result": result.result if result else None,
        }
        print(json.dumps(payload, default=str))
        return
    console.print(
        f"[bold]{item.id}[/] {item.pipeline} v{item.pipeline_version} "
        f"[{STATUS_STYLE.get(item.status, '')}]{item.status}[/]"
    )
    console.print(f"input: {item.input_name or json.dumps(item.record)}   work: {item.work_dir}")
    if item.input_url:
        console.print(f"read from: {item.input_url} (by reference, {item.input_size} bytes)")
    if item.error:
        console.print(f"[red]error:[/] {item.error}")
    table = Table(title="steps")
    for column in ("step", "attempt", "status", "worker", "started", "seconds", "error"):
        table.add_column(column, overflow="fold")
    for run in runs:
        table.add_row(
            run.step,
            str(run.attempt),
            run.status,
            run.worker or "",
            _time(run.started_at),
            _seconds(StepRunOut.of(run).seconds),
            (run.error or "")[:120],
        )
    console.print(table)
    if logs:
        for run in runs:
            if run.logs:
                console.rule(f"logs of {run.step} attempt {run.attempt}")
                console.print(run.logs.rstrip(), markup=False, highlight=False)
    if result is not None:
        console.rule("result")
        console.print_json(json.dumps(result.result, default=str))


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def retry(
    context: typer.Context,
    item_ids: list[str] = typer.Argument(None),
    failed: bool = typer.Option(False, "--failed", help="Retry every failed item."),
    pipeline: str = typer.Option(None, "--pipeline", "-p", help="With --failed: only this one."),
) -> None:
    """Queue failed or cancelled items again."""
    from conveyor.store import actions

    state: CliState = context.obj
    with state.installation.sessions.begin() as session:
        count = actions.retry_failed(session, pipeline) if failed else 0
        for item_id in item_ids or []:
            actions.retry_item(session, item_id)
            count += 1
    console.print(f"queued {count} item(s) again")


def cancel(context: typer.Context, item_ids: list[str] = typer.Argument(...)) -> None:
    """Cancel queued or running items."""
    from conveyor.store import actions

    state: CliState = context.obj
    with state.installation.sessions.begin() as session:
        for item_id in item_ids:
            item = actions.cancel_item(session, item_id)
            console.print(
                f"{item.id}: {'cancelled' if item.status == 'cancelled' else 'cancel requested'}"
            )


def results(
    context: typer.Context,
    pipeline: str = typer.Option(..., "--pipeline", "-p"),
    output_format: str = typer.Option("json", "--format", "-f", help="json or csv"),
    output: Path = typer.Option(None, "--output", "-o", help="File to write (default stdout)."),
    status_filter: str = typer.Option(None, "--status", "-s"),
) -> None:
    """Export a pipeline's items and results as JSON or CSV."""
    from conveyor.results.export import iter_rows, write_csv, write_json
    from conveyor.store.queries import ItemFilter

    if output_format not in ("json", "csv"):
        raise InputRejectedError(f"--format must be json or csv, not {output_format!r}")
    state: CliState = context.obj
    state.installation.registry.get(pipeline)
    filters = ItemFilter(pipeline=pipeline, status=status_filter)
    sessions = state.installation.sessions
    out = output.open("w", newline="") if output else sys.stdout
    try:
        if output_format == "json":
            count = write_json(iter_rows(sessions, filters), out)
        else:
            count = write_csv(lambda: iter_rows(sessions, filters), out)
    finally:
        if output:
            out.close()
    if output:
        console.print(f"wrote {count} row(s) to {output}")


def inbox(
    context: typer.Context,
    scan: bool = typer.Option(False, "--scan", help="Queue every settled file now."),
) -> None:
    """List files waiting in the inbox, or queue them now with --scan."""
    state: CliState = context.obj
    box = state.installation.inbox
    if scan:
        report = box.scan(settle_seconds=0)
        console.print(
            f"queued {len(report.accepted)}, duplicates {len(report.duplicates)}, "
            f"rejected {len(report.rejected)}, waiting {len(report.waiting)}"
        )
        for name, reason in report.rejected.items():
            console.print(f"  [red]{name}[/]: {reason}")
        return
    table = Table(title=f"inbox of {state.settings.home}")
    for column in ("file", "bytes", "pipeline"):
        table.add_column(column)
    for entry, pipeline in box.pending():
        table.add_row(entry.name, str(entry.size), pipeline or "[yellow]none: set one[/]")
    console.print(table)


def pipelines(context: typer.Context) -> None:
    """List the pipelines this installation knows."""
    state: CliState = context.obj
    table = Table()
    for column in ("name", "version", "accepts", "steps", "description"):
        table.add_column(column, overflow="fold")
    for pipeline in state.installation.registry:
        table.add_row(
            pipeline.name,
            pipeline.version,
            ", ".join(pipeline.accepts),
            " ".join(pipeline.order),
            pipeline.description,
        )
    console.print(table)
