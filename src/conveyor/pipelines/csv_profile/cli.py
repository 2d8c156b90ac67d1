"""The ``conveyor demo`` summary of ``csv_profile`` results (PipelineHooks.cli_summary)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from conveyor.store.queries import ItemFilter, iter_results

if TYPE_CHECKING:
    from conveyor.installation import Installation


def print_summary(installation: Installation, console: Console) -> None:
    """One row per profiled file, then why any file failed."""
    with installation.sessions() as session:
        profiles = list(iter_results(session, ItemFilter(pipeline="csv_profile")))
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
