"""``bench``, ``demo``."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from conveyor.cli.state import CliState, console

if TYPE_CHECKING:
    from conveyor.installation import Installation


def register(app: typer.Typer) -> None:
    app.command()(bench)
    app.command()(demo)


def bench(
    context: typer.Context,
    items: int = typer.Option(1000, "--items", "-n", help="How many record items."),
    warmup: int = typer.Option(200, "--warmup", help="Items run first and not counted."),
    database_url: str = typer.Option(None, "--database-url", help="Default: a fresh SQLite."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run N items through the built-in `noop` pipeline and print items/s."""
    from conveyor.engine.bench import run_noop_benchmark  # Ray: only for this command
    from conveyor.installation import Installation
    from conveyor.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as home:
        installation = Installation(load_settings(home, database_url=database_url))
        controller = installation.controller()
        if warmup:
            run_noop_benchmark(installation, warmup, controller)
        with console.status(f"running {items} items through noop"):
            result = run_noop_benchmark(installation, items, controller)
        installation.close()
    figures = {
        "items": result.items,
        "succeeded": result.succeeded,
        "submit_seconds": round(result.submit_seconds, 3),
        "run_seconds": round(result.run_seconds, 3),
        "items_per_second": round(result.items_per_second, 1),
        "ms_per_item": round(result.overhead_ms_per_item, 3),
    }
    if as_json:
        print(json.dumps(figures))
        return
    table = Table(title="conveyor bench (noop, 4 steps per item, durable path)")
    for key in figures:
        table.add_column(key, justify="right")
    table.add_row(*(str(value) for value in figures.values()))
    console.print(table)


def demo(context: typer.Context) -> None:
    """Run the demo job on the embedded default and print a results summary."""
    from conveyor.demo import stage_demo_inputs

    state: CliState = context.obj
    installation = state.installation
    console.print(f"[bold]Conveyor demo[/] in {state.settings.home.resolve()}")
    staged = stage_demo_inputs(installation)
    report = installation.inbox.scan(settle_seconds=0)
    console.print(
        f"inbox: queued {len(report.accepted)} file(s), "
        f"{len(report.duplicates)} duplicate(s); {staged.records} records submitted"
    )
    _run_until_drained(installation)
    _print_summary(installation)


def _run_until_drained(installation: Installation) -> None:
    from conveyor.cli.progress import _progress, count_unfinished

    controller = installation.controller()
    runner = threading.Thread(target=controller.run_until_idle, daemon=True)
    runner.start()
    total = count_unfinished(installation)
    with _progress() as progress:
        task = progress.add_task("processing", total=total)
        while runner.is_alive():
            progress.update(task, completed=total - count_unfinished(installation))
            time.sleep(0.3)
        progress.update(task, completed=total - count_unfinished(installation))


def _print_summary(installation: Installation) -> None:
    """Items by state, then each pipeline's own summary (PipelineHooks.cli_summary)."""
    from conveyor.pipeline.hooks import load_reference
    from conveyor.store.queries import counts_by_status

    with installation.sessions() as session:
        counts = counts_by_status(session)
    table = Table(title="items by state")
    for column in ("pipeline", "succeeded", "failed", "other"):
        table.add_column(column, justify="right")
    for pipeline, by_status in sorted(counts.items()):
        other = sum(v for k, v in by_status.items() if k not in ("succeeded", "failed"))
        table.add_row(
            pipeline,
            str(by_status.get("succeeded", 0)),
            str(by_status.get("failed", 0)),
            str(other),
        )
    console.print(table)
    for pipeline in installation.registry:
        if pipeline.hooks.cli_summary and pipeline.name in counts:
            load_reference(pipeline.hooks.cli_summary)(installation, console)
