"""``maintenance``: telemetry roll-ups and retention (docs/monitoring.md), once; ``conveyor up``
runs the same on a schedule."""

from __future__ import annotations

import threading
import time

import typer

from conveyor.cli.state import CliState, console


def register(app: typer.Typer) -> None:
    app.command()(maintenance)


def maintenance(context: typer.Context) -> None:
    """Roll up predictions and step runs per minute and hour, prune old rows in batches, and
    remove work folders that dead uploads left."""
    from conveyor.retention.maintenance import run_maintenance
    from conveyor.retention.policy import policy_from_settings

    state: CliState = context.obj
    policy = policy_from_settings(state.settings.retention)
    started = time.monotonic()
    installation = state.installation
    report = run_maintenance(installation.sessions, policy, storage=installation.storage)
    console.print(f"{report.summary()} ({time.monotonic() - started:.1f} s)")


def start_scheduled_maintenance(state: CliState, stop: threading.Event) -> None:
    """In ``conveyor up``: maintenance every ``retention.interval_minutes`` unless disabled."""
    from conveyor.retention.maintenance import start_schedule
    from conveyor.retention.policy import policy_from_settings

    retention = state.settings.retention
    if retention.scheduled:
        policy = policy_from_settings(retention)
        installation = state.installation
        interval = retention.interval_minutes * 60
        start_schedule(installation.sessions, policy, interval, stop, installation.storage)
