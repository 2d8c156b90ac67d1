"""``conveyor models deliver`` and ``conveyor models deliveries``: model CI/CD (docs/cicd.md).

Named under ``models`` rather than ``conveyor deploy``, which sets up a cluster deployment
(secrets, init): delivering a model version sits beside ``models promote`` and ``rollback``.
"""

from __future__ import annotations

import getpass
import json
import signal
from pathlib import Path

import typer
from rich.table import Table

from conveyor.cli.state import CliState, console

# Exit codes a CI job can tell apart: promoted (or skipped) 0, failed 1, refused 3, rolled back 4.
EXIT_CODES = {"promoted": 0, "skipped": 0, "failed": 1, "refused": 3, "rolled-back": 4}


def register(models_app: typer.Typer) -> None:
    models_app.command("deliver")(deliver)
    models_app.command("deliveries")(deliveries)


def deliver(
    context: typer.Context,
    repository: Path = typer.Option(
        Path("."), "--repo", help="The model's git repository (bare or not)."
    ),
    commit: str = typer.Option("HEAD", "--commit", help="Commit or branch to deliver."),
    pushed_ref: str = typer.Option(
        None,
        "--ref",
        help="The pushed ref (refs/heads/NAME); other branches than the layout's "
        "branch are skipped.",
    ),
    requested_by: str = typer.Option(None, "--requested-by", help="Who pushed (default: you)."),
    no_controller: bool = typer.Option(
        False,
        "--no-controller",
        help="Never run a controller here: a `conveyor up` elsewhere trains on the shared store.",
    ),
) -> None:
    """Deliver a commit: train, gate, register as challenger, canary, promote or roll back."""
    from conveyor.delivery.service import Delivery, DeliveryRequest

    state: CliState = context.obj
    request = DeliveryRequest(
        repository,
        commit,
        pushed_ref,
        requested_by or f"git:{getpass.getuser()}",
        local_controller=not no_controller,
    )
    delivery = Delivery(state.installation, report=lambda line: console.print(line, soft_wrap=True))
    # SIGTERM (a CI job cancelled, a stopped server) unwinds like Ctrl-C: a running canary
    # gives the endpoint its routing back before the process ends.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    result = delivery.run(request)
    version = f" v{result.version}" if result.version is not None else ""
    console.print(
        f"{result.model}{version} from {result.commit[:12]}: {result.outcome} "
        f"(delivery {result.delivery_id})",
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_CODES.get(result.outcome, 1))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def deliveries(
    context: typer.Context,
    name: str = typer.Argument(None, help="A model (default: every model)."),
    commit: str = typer.Option(None, "--commit", help="Only this commit (a prefix is enough)."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """The audit trail of deliveries: every step with its commit, version and outcome."""
    from conveyor.delivery.audit import delivery_steps

    state: CliState = context.obj
    with state.installation.sessions() as session:
        steps = delivery_steps(session, name, commit)
    if as_json:
        for step in steps:
            typer.echo(json.dumps(step.as_dict()))
        return
    table = Table(title="model deliveries")
    for column in ("when (UTC)", "model", "commit", "delivery", "step", "outcome", "version"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for step in steps:
        table.add_row(
            step.at.strftime("%Y-%m-%d %H:%M:%S"),
            step.model,
            step.commit[:12],
            step.delivery_id,
            step.step,
            step.outcome,
            f"v{step.version}" if step.version is not None else "",
            step.detail,
        )
    console.print(table)
