"""``bench``, ``demo``."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
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
    from conveyor.store.queries import ItemFilter, counts_by_status, iter_results

    with installation.sessions() as session:
        counts = counts_by_status(session)
        profiles = list(iter_results(session, ItemFilter(pipeline="csv_profile")))
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
    files = Table(title="csv_profile results")
    for column in ("file", "status", "rows", "columns", "duplicates", "incomplete"):
        files.add_column(column, justify="left" if column in ("file", "status") else "right")
    failures = []
    for item, result in profiles:
        data = result.result if result else {}
        name = Path(item.input_name or "").name
        files.add_row(
            name,
            item.status,
            str(data.get("rows", "")),
            str(data.get("columns", "")),
            str(data.get("duplicate_rows", "")),
            str(data.get("incomplete_rows", "")),
        )
        if item.error:
            failures.append(f"{name}: {item.error}")
    console.print(files)
    for failure in failures:
        console.print(f"[red]failed[/] {failure}")
    console.print("export: conveyor results --pipeline csv_profile --format csv -o profile.csv")
    _print_calls(installation)


def _print_calls(installation: Installation) -> None:
    from conveyor.store.queries import ItemFilter, iter_results

    with installation.sessions() as session:
        calls = list(iter_results(session, ItemFilter(pipeline="calls")))
    if not calls:
        return
    table = Table(title="calls results")
    columns = ("file", "duration", "speakers", "customer satisfaction", "top emotion", "flag")
    for column in columns:
        justify = "right" if column in columns[1:4] else "left"
        table.add_column(column, justify=justify, no_wrap=column == "file")
    reasons = []
    for item, result in calls:
        name = Path(item.input_name or "").name
        table.add_row(*calls_row(name, item.status, result))
        flag = result.result.get("flag", {}) if result and result.result else {}
        reasons += [f"[red]poor call[/] {name}: {reason}" for reason in flag.get("reasons", [])]
        if item.error:
            reasons.append(f"[red]failed[/] {name}: {item.error}")
    console.print(table)
    for reason in reasons:
        console.print(reason)
    console.print("export: conveyor results --pipeline calls --format json -o calls.json")


def calls_row(name: str, status: str, result) -> list[str]:  # type: ignore[no-untyped-def]
    """One line of the demo's calls table: file, duration, speakers, satisfaction, emotion, flag."""
    data = result.result if result else None
    if not data:
        return [name, "", "", "", "", status]
    satisfaction = data.get("customer_satisfaction")
    flag = "POOR" if data["flag"]["poor_call"] else "ok"
    return [
        name,
        f"{data['duration_s']:.1f} s",
        str(len(data["speakers"])),
        "" if satisfaction is None else f"{satisfaction:.1f}/5",
        data.get("top_emotion") or "",
        flag,
    ]
