"""Long-running commands: ``up`` (controller + inbox watcher) and ``worker`` (join Ray)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

import typer

from conveyor.cli.state import CliState, console
from conveyor.engine.presence import remove_pid_file, write_pid_file
from conveyor.errors import ConfigurationError
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
    controller = installation.controller()
    stop = threading.Event()
    # Only now: ray.init (inside controller()) installs a SIGTERM handler that calls sys.exit,
    # which would interrupt the loop anywhere instead of letting it hand items back.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
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
    num_cpus: int = typer.Option(None, "--num-cpus", help="CPUs to offer (default: all)."),
    node_ip: str = typer.Option(
        None, "--node-ip-address", help="This node's IP as the head reaches it."
    ),
    resources: str = typer.Option(None, "--resources", help='JSON, e.g. {"gpu_box": 1}'),
    object_store_mb: int = typer.Option(
        None, "--object-store-mb", help="Object store size (default: Ray's, 30% of memory)."
    ),
    temp_dir: Path = typer.Option(
        None,
        "--temp-dir",
        help="Ray's session folder (default /tmp/ray); each node on one machine needs its own.",
    ),
    ray_options: list[str] = typer.Argument(
        None, help="More `ray start` options after --, e.g. -- --dashboard-agent-listen-port=52366"
    ),
) -> None:
    """Join this machine to a Ray cluster as a worker node (runs until stopped).

    Becomes `ray start --block` in this same process: SIGTERM to its PID stops the node cleanly.
    With token auth, first set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the head's token.
    """
    command = [_ray_command(), "start", f"--address={head}", "--block", "--disable-usage-stats"]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    if node_ip:
        command.append(f"--node-ip-address={node_ip}")
    if resources:
        command.append(f"--resources={resources}")
    if object_store_mb is not None:
        command.append(f"--object-store-memory={object_store_mb * 1024 * 1024}")
    if temp_dir is not None:
        command.append(f"--temp-dir={temp_dir.resolve()}")
    command += ray_options or []
    console.print(
        f"joining Ray cluster at {head}: {' '.join(command)}", markup=False, soft_wrap=True
    )
    sys.stdout.flush()
    os.execv(command[0], command)


def _ray_command() -> str:
    # The `ray` beside this interpreter, so the node runs the same Ray and Python as Conveyor
    # even when the virtual environment is not on PATH (e.g. under `ip netns exec`).
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        raise ConfigurationError(
            f"no `ray` command beside {sys.executable} or on PATH; install Conveyor (which "
            "brings Ray) in this environment."
        )
    return found
