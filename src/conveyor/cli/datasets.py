"""``datasets``: the dataset snapshots training runs used, and the runs that used each
(docs/datasets.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from conveyor.cli.state import console, error_console
from conveyor.errors import InputRejectedError

if TYPE_CHECKING:
    from conveyor.models.datasets import DatasetCatalog, DatasetSnapshot

datasets_app = typer.Typer(
    help="Dataset snapshots of training runs: list, show, export.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")


def _catalog(context: typer.Context) -> DatasetCatalog:
    from conveyor.models.datasets import DatasetCatalog

    installation = context.obj.installation
    return DatasetCatalog(installation.sessions, installation.storage, installation.registry)


def _chosen(
    catalog: DatasetCatalog, digest: str | None, model: str | None, version: int | None
) -> DatasetSnapshot:
    if version is not None:
        if model is None or digest is not None:
            raise InputRejectedError("--version needs --model (and no DIGEST)")
        return catalog.of_version(model, version)
    if digest is None:
        raise InputRejectedError("give a DIGEST (6 or more hex digits), or --model M --version N")
    return catalog.snapshot(digest, model)


@datasets_app.command("list")
def list_datasets(
    context: typer.Context,
    model: str = typer.Option(None, "--model", "-m", help="Only this model's snapshots."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable output."),
) -> None:
    """Every snapshot: model, digest, size, the runs that used it and their versions."""
    snapshots = _catalog(context).snapshots(model)
    if as_json:
        print(json.dumps([snapshot_view(s) for s in snapshots], default=str))
        return
    table = Table(title="dataset snapshots, most recently used first")
    for column in ("model", "digest", "bytes", "runs", "versions", "last used"):
        table.add_column(column, overflow="fold")
    for snapshot in snapshots:
        last = max((run.created_at for run in snapshot.runs), default=None)
        table.add_row(
            snapshot.model,
            snapshot.digest[:16],
            "[red]missing[/]" if snapshot.size is None else f"{snapshot.size:,}",
            str(len(snapshot.runs)),
            ", ".join(f"v{v}" for v in snapshot.versions),
            last.strftime("%Y-%m-%d %H:%M") if last else "",
        )
    console.print(table)


@datasets_app.command("show")
def show(
    context: typer.Context,
    digest: str = typer.Argument(None, help="The digest or its first 6+ hex digits."),
    model: str = typer.Option(None, "--model", "-m"),
    version: int = typer.Option(None, "--version", "-v", help="With --model: that version's."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One snapshot and every run that used it (model, version, MLflow run id)."""
    snapshot = _chosen(_catalog(context), digest, model, version)
    if as_json:
        print(json.dumps(snapshot_view(snapshot), default=str))
        return
    size = "missing from storage" if snapshot.size is None else f"{snapshot.size:,} bytes"
    console.print(f"[bold]{snapshot.digest}[/] of {snapshot.model}: {size}")
    console.print(f"stored at {snapshot.path}")
    table = Table(title="runs that used it")
    for column in ("item", "status", "version", "mlflow run", "trigger", "created", "source"):
        table.add_column(column, overflow="fold")
    for run in snapshot.runs:
        table.add_row(
            run.item_id[:12],
            run.status,
            "" if run.version is None else f"v{run.version}",
            run.run_id or "",
            run.trigger,
            run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            run.source,
        )
    console.print(table)


@datasets_app.command("export")
def export(
    context: typer.Context,
    digest: str = typer.Argument(None, help="The digest or its first 6+ hex digits."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write (CSV)."),
    model: str = typer.Option(None, "--model", "-m"),
    version: int = typer.Option(None, "--version", "-v", help="With --model: that version's."),
) -> None:
    """Write a snapshot's bytes to a file, checked against its digest as they are copied."""
    from conveyor.models.datasets import copy_verified

    catalog = _catalog(context)
    snapshot = _chosen(catalog, digest, model, version)
    partial = output.with_name(f".{output.name}.partial")
    with catalog.open(snapshot) as source, partial.open("wb") as out, _progress() as progress:
        task = progress.add_task("export", total=snapshot.size)
        try:
            size = copy_verified(source, out, snapshot.digest, lambda n: progress.advance(task, n))
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    partial.replace(output)
    console.print(f"wrote {size:,} bytes of {snapshot.model} dataset {snapshot.digest} to {output}")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]exporting[/]"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=error_console,
        transient=True,
        disable=not error_console.is_terminal,
    )


def snapshot_view(snapshot: DatasetSnapshot) -> dict[str, Any]:
    """What `--json` prints (the API's shape)."""
    from conveyor.api.routes.datasets import DatasetOut

    return DatasetOut.of(snapshot).model_dump(mode="json")
