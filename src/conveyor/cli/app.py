"""Entry point of the ``conveyor`` command: global options and error reporting."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from conveyor.cli import (
    accounts,
    datasets,
    deploy,
    items,
    maintenance,
    models,
    monitoring,
    run,
    scoring,
    serve,
    streams,
    tools,
)
from conveyor.cli.state import CliState, error_console
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.settings import Settings


class ConveyorGroup(TyperGroup):
    """Turns Conveyor's own errors into a clear message and exit code 2, for every command."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConveyorError as error:
            error_console.print(f"[bold red]error:[/] {error}")
            raise typer.Exit(2) from error


app = typer.Typer(
    cls=ConveyorGroup,
    help="Conveyor: durable ML pipelines on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
items.register(app)
run.register(app)
tools.register(app)
accounts.register(app)
monitoring.register(app)
maintenance.register(app)
models.register(app)
serve.register(app)
deploy.register(app)
streams.register(app)
scoring.register(app)
datasets.register(app)


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
    process_entry = context.obj is PROCESS_ENTRY
    context.obj = CliState(lambda: _load_settings(home), private_umask=process_entry)


def _load_settings(home: Path | None) -> Settings:
    from conveyor.settings import load_settings  # pydantic: only for commands that use it

    return load_settings(home)


PROCESS_ENTRY = object()  # marks a real `conveyor` process, as opposed to an in-process test


def main() -> None:
    app(obj=PROCESS_ENTRY)
