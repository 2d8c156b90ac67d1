"""Commands about models: ``train`` and ``models list|show|history|rollback|export``."""

from __future__ import annotations

import getpass
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from conveyor.cli.state import CliState, console
from conveyor.delivery.tags import COMMIT_TAG
from conveyor.errors import InputRejectedError

if TYPE_CHECKING:  # MLflow and the model stack load with the model commands only
    from conveyor.models.service import ModelOps
    from conveyor.models.training import TrainingOutcome

POLL_SECONDS = 0.5
SHORT = {"accuracy": "acc", "roc_auc": "auc", "precision_at_20": "p@20", "recall_at_20": "r@20"}
models_app = typer.Typer(help="Registered models: versions, aliases, history, rollback, export.")


def register(app: typer.Typer) -> None:
    from conveyor.cli import delivery

    app.command()(train)
    delivery.register(models_app)
    app.add_typer(models_app, name="models")


def _ops(context: typer.Context) -> ModelOps:
    from conveyor.models.service import ModelOps

    state: CliState = context.obj
    return ModelOps(state.installation)


def train(
    context: typer.Context,
    name: str = typer.Argument(..., help="Model to train, e.g. heart."),
    params: list[str] = typer.Option(
        None, "--param", "-P", help="NAME=VALUE, repeatable; dataset=PATH picks the data file."
    ),
    wait: bool = typer.Option(False, "--wait", help="Show progress; exit once registered."),
) -> None:
    """Start a training run (an item of the model's training pipeline)."""
    from conveyor.models.training import parse_param

    ops = _ops(context)
    given = dict(parse_param(text) for text in params or [])
    submission = ops.train(name, given, trigger="cli")
    console.print(f"training run {submission.item_id} queued for model {name}")
    if wait:
        _wait_and_report(ops, submission.item_id)


def _wait_and_report(ops: ModelOps, item_id: str) -> None:
    from conveyor.models.history import FAILED
    from conveyor.models.training import TrainingOutcome
    from conveyor.store import queries

    installation = ops.installation
    with _local_controller(installation) as local, console.status("starting") as status:
        item = _wait_for_item(ops, item_id, status)
        if item.status != "succeeded":
            console.print(f"[red]training run {item.status}:[/] {item.error or ''}")
            raise typer.Exit(1)
        registration = _wait_for_registration(ops, item_id, local, status)
    with installation.sessions() as session:
        result = queries.result_of(session, item_id)
    outcome = TrainingOutcome.from_result(result.result if result else None)
    _print_outcome(outcome)
    if registration.state == FAILED:
        console.print(f"[red]registration failed:[/] {registration.error}")
        raise typer.Exit(1)
    _print_registration(ops, outcome.model, registration.version)


@contextmanager
def _local_controller(installation: Any) -> Iterator[bool]:
    """Run a controller here while waiting, unless ``conveyor up`` serves this home."""
    from conveyor.engine.presence import controller_alive

    if controller_alive(installation.settings.home):
        yield False
        return
    stop = threading.Event()
    worker = threading.Thread(target=installation.controller().run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield True
    finally:
        stop.set()
        worker.join()


def _wait_for_item(ops: ModelOps, item_id: str, status: Any) -> Any:
    from conveyor.core.lifecycle import FINAL_STATUSES
    from conveyor.store import queries

    while True:
        with ops.installation.sessions() as session:
            item = queries.get_item(session, item_id)
            runs = queries.step_runs(session, item_id)
        steps = {run.step: run.status for run in runs}
        status.update(
            f"training {item.pipeline}: {item.status}  "
            + "  ".join(f"{step} {state}" for step, state in steps.items())
        )
        if item.status in FINAL_STATUSES:
            return item
        time.sleep(POLL_SECONDS)


def _wait_for_registration(ops: ModelOps, item_id: str, local: bool, status: Any) -> Any:
    from conveyor.models.history import FAILED, REGISTERED

    status.update("registering the model version in MLflow")
    while True:
        if local:
            ops.register_pending()
        registration = ops.registration(item_id)
        if registration is not None and registration.state in (REGISTERED, FAILED):
            return registration
        time.sleep(POLL_SECONDS)


def _print_outcome(outcome: TrainingOutcome) -> None:
    metrics = list(outcome.heldout)
    how = outcome.evaluation or f"cross-validated, {outcome.params.get('cv_folds')} folds, mean±std"
    table = Table(
        title=f"{outcome.model}: candidates ({how}) and the chosen one (*) on held-out data"
    )
    table.add_column("candidate (* chosen)", no_wrap=True)
    for metric in metrics:
        table.add_column(metric, justify="right")
    for name, scores in outcome.candidates.items():
        chosen = name == outcome.chosen
        table.add_row(
            f"[bold green]{name} *[/]" if chosen else name,
            *(f"{scores[m]['mean']:.3f}±{scores[m]['std']:.3f}" for m in metrics),
        )
    table.add_row(
        "[bold]* on held-out data[/]", *(f"[bold]{outcome.heldout[m]:.3f}[/]" for m in metrics)
    )
    if outcome.baseline:
        table.add_row("baseline on held-out data", *(f"{outcome.baseline[m]:.3f}" for m in metrics))
    console.print(table)
    dataset = outcome.dataset
    console.print(
        f"dataset {dataset['source']} sha256 {dataset['sha256'][:16]}… ({dataset['rows']} rows, "
        f"{dataset['heldout_rows']} held out); code {outcome.code_version}"
    )
    if outcome.onnx.get("onnx_exported"):
        console.print(
            "ONNX export agrees with the native model on the held-out rows (max probability "
            f"difference {outcome.onnx['onnx_max_probability_difference']:.1e})"
        )


def _print_registration(ops: ModelOps, model: str, version: int) -> None:
    change = next(c for c in reversed(ops.history(model)) if c.to_version == version)
    console.print(
        f"registered [bold]{model} v{version}[/] as [bold]{change.alias}[/]: {change.reason}"
    )


@models_app.command("list")
def list_models(context: typer.Context) -> None:
    """Registered models with their champion and challenger."""
    ops = _ops(context)
    table = Table()
    for column in ("model", "versions", "champion", "challenger", "trained by pipeline"):
        table.add_column(column)
    registered = set(ops.tracking.model_names())
    for name in sorted(registered | {p.model_name for p in ops.training_pipelines()}):
        if name not in registered:
            table.add_row(name, "0", "", "", name)
            continue
        aliases = ops.tracking.aliases(name)
        versions = ops.versions(name)
        commits = {v.version: v.tags.get(COMMIT_TAG, "")[:12] for v in versions}
        table.add_row(
            name,
            str(len(versions)),
            _with_commit(aliases.get("champion"), commits),
            _with_commit(aliases.get("challenger"), commits),
            name,
        )
    console.print(table)
    console.print(f"MLflow: {ops.tracking.tracking_uri}")


def _version_text(version: int | None) -> str:
    return f"v{version}" if version is not None else ""


def _with_commit(version: int | None, commits: dict[int, str]) -> str:
    """``v2``, or ``v2 @deaa951349ba`` for a version delivered from a commit (docs/cicd.md)."""
    commit = commits.get(version) if version is not None else None
    return f"{_version_text(version)} @{commit}" if commit else _version_text(version)


@models_app.command("show")
def show_model(context: typer.Context, name: str = typer.Argument(...)) -> None:
    """Versions of a model with their metrics side by side."""
    ops = _ops(context)
    table = Table(title=f"{name}: versions; cv/val = candidate comparison, test = held-out data")
    versions = ops.versions(name)
    if not versions:
        console.print(f"{name} has no versions yet")
        return
    measured = [k.removeprefix("heldout_") for k in (versions[0].metrics if versions else {})]
    names = sorted({m for m in measured if f"heldout_{m}" in versions[0].metrics})
    metric_columns = {f"{p}_{m}": f"{p} {SHORT.get(m, m)}" for p in ("cv", "val") for m in names}
    metric_columns = {k: v for k, v in metric_columns.items() if k in versions[0].metrics}
    metric_columns |= {f"heldout_{m}": f"test {SHORT.get(m, m)}" for m in names}
    for column in ("version", "aliases", "candidate"):
        table.add_column(column, no_wrap=True)
    for header in metric_columns.values():
        table.add_column(header, justify="right")
    for column in ("dataset", "code", "commit", "created (UTC)"):
        table.add_column(column, no_wrap=True)
    for info in versions:
        table.add_row(
            f"v{info.version}",
            ", ".join(info.aliases),
            info.params.get("chosen_candidate", ""),
            *(_metric(info.metrics.get(m)) for m in metric_columns),
            info.params.get("dataset_sha256", "")[:8],
            info.params.get("code_version", "").removeprefix("git:")[:8],
            info.tags.get(COMMIT_TAG, "")[:12],
            info.created_at.strftime("%m-%d %H:%M"),
        )
    console.print(table)


def _metric(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


@models_app.command("history")
def model_history(context: typer.Context, name: str = typer.Argument(...)) -> None:
    """Every alias change of a model: when, what, from/to which version, by whom, why."""
    table = Table(title=f"{name}: alias history")
    for column in ("when (UTC)", "alias", "action", "from", "to", "by", "why"):
        table.add_column(column, overflow="fold")
    for change in _ops(context).history(name):
        table.add_row(
            change.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            change.alias,
            change.action,
            _version_text(change.from_version),
            _version_text(change.to_version),
            change.actor,
            change.reason,
        )
    console.print(table)


@models_app.command("rollback")
def rollback(
    context: typer.Context,
    name: str = typer.Argument(...),
    reason: str = typer.Option("rolled back by hand", "--reason", help="Why, for the history."),
) -> None:
    """Give the champion alias back to the previous champion."""
    change = _ops(context).rollback(name, actor=f"cli:{getpass.getuser()}", reason=reason)
    console.print(
        f"{name}: champion moved back from v{change.from_version} to v{change.to_version}"
    )


@models_app.command("promote")
def promote(
    context: typer.Context,
    name: str = typer.Argument(...),
    version: int = typer.Option(..., "--version", help="The version to make champion."),
    reason: str = typer.Option("promoted by hand", "--reason", help="Why, for the history."),
) -> None:
    """Make a version the champion by hand, bypassing the gate (recorded in the history)."""
    change = _ops(context).promote(name, version, actor=f"cli:{getpass.getuser()}", reason=reason)
    before = _version_text(change.from_version) or "none"
    console.print(f"{name}: champion moved from {before} to v{change.to_version}")


@models_app.command("export")
def export(
    context: typer.Context,
    name: str = typer.Argument(...),
    output_format: str = typer.Option("onnx", "--format", help="Only onnx for now."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write."),
    version: int = typer.Option(None, "--version", help="A version (default: the champion)."),
    alias: str = typer.Option(None, "--alias", help="An alias instead of the champion."),
) -> None:
    """Write a model version as a file for a device."""
    if output_format != "onnx":
        raise InputRejectedError(f"--format must be onnx, not {output_format!r}")
    exported = _ops(context).export_onnx(name, output, version, alias)
    console.print(f"wrote {name} v{exported} as ONNX to {output}")


@models_app.command("add-rows")
def add_rows(
    context: typer.Context,
    name: str = typer.Argument(...),
    path: Path = typer.Argument(..., help="CSV rows in the dataset's layout, with labels."),
) -> None:
    """Add new labelled rows for a model's next training (counted by its data trigger)."""
    if not path.is_file():
        raise InputRejectedError(f"{path} is not a readable file")
    ops = _ops(context)
    added = ops.triggers.add_rows(name, path.read_bytes(), str(path))
    waiting, total = ops.triggers.pending_rows(name)
    configured = ops.settings.models.get(name)
    threshold = configured.retrain_after_rows if configured else None
    minutes = configured.retrain_after_minutes if configured else None
    rules = []
    if threshold:
        rules.append(f"at {threshold} rows")
    if minutes:
        rules.append(f"{minutes:g} min after the oldest")
    if rules:
        when = f"training starts {' or '.join(rules)} (checked by `conveyor up`)"
    else:
        when = f"set models.{name}.retrain_after_rows to train on them automatically"
    console.print(f"added {added} row(s); {waiting} new since the last run, {total} kept; {when}")
