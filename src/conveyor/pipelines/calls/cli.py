"""The ``conveyor demo`` summary of ``calls`` results (PipelineHooks.cli_summary)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from conveyor.store.queries import ItemFilter, iter_results

if TYPE_CHECKING:
    from conveyor.installation import Installation


def print_summary(installation: Installation, console: Console) -> None:
    """One row per call, then the reasons of every poor call and failure."""
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


def calls_row(name: str, status: str, result: Any) -> list[str]:
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
