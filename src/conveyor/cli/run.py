"""Long-running commands: ``up`` (controller + inbox watcher) and ``worker`` (join Ray)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading

import typer

from conveyor.cli.state import CliState, console
from conveyor.engine.presence import remove_pid_file, write_pid_file
from conveyor.ingest.inbox import InboxWatcher


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(worker)


def up(
    context: typer.Context,
    ray_address: str = typer.Option(None, "--ray-address", help="Use an existing Ray cluster."),
    watch_inbox: bool = typer.Option(True, "--inbox/--no-inbox", help="Watch the inbox."),
    log_level: str = typer.Option("INFO", "--log-level"),
) -> None:
    """Run the controller and the inbox watcher in the foreground; Ctrl-C stops cleanly."""
    state: CliState = context.obj
    if ray_address:
        state.settings.ray_address = ray_address
    installation = state.installation
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(state.settings.log_dir / "up.log")],
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    controller = installation.controller()
    write_pid_file(state.settings.home)
    console.print(
        f"conveyor up: home {state.settings.home}, store {_redacted(state.settings)}, "
        f"{controller.executor.total_cpus():g} CPUs, up to {controller.max_inflight} items in "
        "flight. Ctrl-C stops."
    )
    if watch_inbox:
        InboxWatcher(installation.inbox, state.settings.inbox_scan_seconds, stop).start()
    try:
        controller.run(stop)
    finally:
        remove_pid_file(state.settings.home)
        console.print("stopped; held items were handed back for the next controller")


def _redacted(settings) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def worker(
    head: str = typer.Option(..., "--head", help="Address of the Ray head, HOST:PORT."),
    num_cpus: int = typer.Option(None, "--num-cpus"),
    node_ip: str = typer.Option(None, "--node-ip-address"),
    resources: str = typer.Option(None, "--resources", help='JSON, e.g. {"gpu_box": 1}'),
) -> None:
    """Join this machine to a Ray cluster as a worker node (runs until stopped)."""
    command = ["ray", "start", f"--address={head}", "--block", "--disable-usage-stats"]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    if node_ip:
        command.append(f"--node-ip-address={node_ip}")
    if resources:
        command.append(f"--resources={resources}")
    console.print(f"joining Ray cluster at {head}: {' '.join(command)}")
    raise typer.Exit(subprocess.call(command, env=os.environ.copy()))
