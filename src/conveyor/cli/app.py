"""Entry point of the ``conveyor`` command: global options and error reporting."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from conveyor.cli import items, run, tools
from conveyor.cli.state import CliState
from conveyor.errors import ConveyorError
from conveyor.settings import load_settings

app = typer.Typer(
    help="Conveyor: durable ML pipelines on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
items.register(app)
run.register(app)
tools.register(app)


@app.callback()
def main_options(
    context: typer.Context,
    home: Path = typer.Option(
        None,
        "--home",
        envvar="CONVEYOR_HOME",
        help="Folder holding this installation's state (default ./conveyor-data).",
    ),
) -> None:
    context.obj = CliState(lambda: load_settings(home))


def main() -> None:
    try:
        app()
    except ConveyorError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}")
        sys.exit(2)
