"""Long-running commands: ``up`` (controller, inbox watcher, stream consumers, API and UI) and
``worker``."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from conveyor.cli.state import CliState, console
from conveyor.errors import ConfigurationError

if TYPE_CHECKING:  # the API, Ray and MLflow load when `up` runs, not for every command
    import uvicorn

    from conveyor.installation import Installation

DEFAULT_METRICS_PORT = 8322


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(worker)


def up(
    context: typer.Context,
    ray_address: str = typer.Option(None, "--ray-address", help="Use an existing Ray cluster."),
    watch_inbox: bool = typer.Option(True, "--inbox/--no-inbox", help="Watch the inbox."),
    serve_api: bool = typer.Option(True, "--api/--no-api", help="Serve the API and web UI."),
    host: str = typer.Option(None, "--host", help="Address to serve on (default 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port to serve on (default 8321)."),
    root_path: str = typer.Option("", "--root-path", help="Sub-path behind a reverse proxy."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve without logins (loopback)."),
    allow_insecure: bool = typer.Option(
        False, "--allow-insecure", help="Allow --no-auth on a non-loopback address."
    ),
    metrics_port: int = typer.Option(
        None, "--metrics-port", help="Also serve /metrics on this port (--no-api: 8322)."
    ),
    log_level: str = typer.Option("INFO", "--log-level"),
) -> None:
    """Run the controller, inbox watcher, API and UI in the foreground; Ctrl-C stops cleanly."""
    from conveyor.engine.presence import remove_pid_file, write_pid_file
    from conveyor.ingest.inbox import InboxWatcher

    state: CliState = context.obj
    settings = state.settings
    settings.ray_address = ray_address or settings.ray_address
    settings.api_host = host or settings.api_host
    settings.api_port = port or settings.api_port
    settings.auth_required = settings.auth_required and not no_auth
    _refuse_open_without_auth(settings.api_host, settings.auth_required, allow_insecure)
    installation = state.installation
    _configure_logging(settings.log_dir, log_level)
    controller = installation.controller()
    stop = threading.Event()
    # Only now: ray.init (inside controller()) installs a SIGTERM handler that calls sys.exit,
    # which would interrupt the loop anywhere instead of letting it hand items back.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    write_pid_file(settings.home)
    console.print(
        f"conveyor up: home {settings.home}, {controller.executor.total_cpus():g} CPUs, up to "
        f"{controller.max_inflight} items in flight. Ctrl-C stops."
    )
    if watch_inbox:
        InboxWatcher(installation.inbox, settings.inbox_scan_seconds, stop).start()
    _start_background_loops(state, stop)
    server = _start_api(installation, root_path) if serve_api else None
    stop_metrics = _start_metrics(installation, metrics_port, serve_api)
    try:
        controller.run(stop)
    finally:
        if server is not None:
            server.should_exit = True
        if stop_metrics is not None:
            stop_metrics()
        remove_pid_file(settings.home)
        console.print("stopped; held items were handed back for the next controller")


def _start_background_loops(state: CliState, stop: threading.Event) -> None:
    from conveyor.cli.maintenance import start_scheduled_maintenance
    from conveyor.models.service import start_loop as start_model_loop
    from conveyor.scoring.worker import ScoringWorker
    from conveyor.streams.relay import OutboxRelay
    from conveyor.streams.runner import StreamRunner

    start_model_loop(state.installation, stop)  # registers training runs, fires schedules/triggers
    start_scheduled_maintenance(state, stop)  # telemetry roll-ups and retention
    StreamRunner(state.installation).start(stop)  # the enabled stream sources' consumers
    OutboxRelay(state.installation).start(stop)  # the stream sinks' outbox, to their brokers
    ScoringWorker(state.installation).start(stop)  # API scoring jobs whose process stopped


def _refuse_open_without_auth(host: str, auth_required: bool, allow_insecure: bool) -> None:
    if auth_required or allow_insecure or _is_loopback(host):
        return
    raise ConfigurationError(
        f"refusing to serve on {host} without authentication: anyone on the network could "
        "submit and delete work. Drop --no-auth, bind to 127.0.0.1, or pass --allow-insecure."
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _configure_logging(log_dir, level: str) -> None:  # type: ignore[no-untyped-def]
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(log_dir / "up.log")],
    )


def _ensure_first_admin(installation: Installation) -> None:
    """Create 'admin' on a store without users, once even when two `up`s start together."""
    from conveyor.auth.service import add_user, count_users
    from conveyor.firstuse import database_lock

    if _has_users(installation):
        return
    settings = installation.settings
    lock = database_lock(
        settings.resolved_database_url,
        "first-admin",
        "creating the first admin user",
        settings.init_lock_timeout_seconds,
    )
    with lock, installation.sessions.begin() as session:
        if count_users(session) > 0:
            return
        password = secrets.token_urlsafe(18)
        add_user(session, "admin", password, "admin", must_change_password=True)
    console.print(
        "[bold yellow]First start: created user 'admin' with the one-time password[/]\n"
        f"    {password}\n"
        "It only serves to choose a new one at the first login (web UI or "
        "POST /api/v1/auth/password); then add your own users (conveyor users add NAME). "
        "This password is not shown again."
    )


def _has_users(installation: Installation) -> bool:
    from conveyor.auth.service import count_users

    with installation.read_sessions() as session:
        return count_users(session) > 0


def _start_api(installation: Installation, root_path: str) -> uvicorn.Server:
    import uvicorn

    from conveyor.api.app import create_app

    settings = installation.settings
    if settings.auth_required:
        _ensure_first_admin(installation)
    app = create_app(installation, root_path=root_path)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        timeout_graceful_shutdown=5,
        **proxy_options(settings.forwarded_allow_ips),
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="conveyor-api", daemon=True).start()
    console.print(
        f"API and UI on http://{settings.api_host}:{settings.api_port}{root_path}/ "
        f"(OpenAPI at {root_path}/api/docs)"
    )
    return server


def proxy_options(forwarded_allow_ips: list[str]) -> dict[str, Any]:
    """uvicorn's options for X-Forwarded-For and -Proto: honoured only from the listed proxy
    addresses, and from nobody by default (else any client could pick its address and so
    escape the login limits)."""
    if not forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}


def _start_metrics(
    installation: Installation, port: int | None, serving_api: bool
) -> Callable[[], None] | None:
    """The API serves /metrics; without it (or with an explicit port) a small server does."""
    if port is None and serving_api:
        return None
    from conveyor.monitoring.server import serve_metrics

    port = port or DEFAULT_METRICS_PORT
    host = installation.settings.api_host
    stop = serve_metrics(installation.metrics.registry, host, port)
    console.print(f"metrics on http://{host}:{port}/metrics")
    return stop


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

    Runs `ray start --block` and runs it again whenever it ends (its head restarted or went
    away), once the head answers: one line per attempt. SIGTERM or Ctrl-C stops the node.
    With token auth, first set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the head's token.
    """
    from conveyor.engine.worker_node import WorkerNode

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
    say("conveyor worker: " + " ".join(command))
    node = WorkerNode(command, head, lambda line: say(f"conveyor worker: {line}"))
    node.install_signal_handlers()
    raise typer.Exit(node.run())


def say(line: str) -> None:
    console.print(line, markup=False, soft_wrap=True)
    sys.stdout.flush()


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
