"""``conveyor serve``: model serving replicas (uvicorn worker processes) on one port.

Every worker reads the same registry and routing config and reloads on its own; run several
machines' ``serve`` behind a load balancer for more.
"""

from __future__ import annotations

import os

import typer

from conveyor.cli.run import _refuse_open_without_auth, proxy_options
from conveyor.cli.state import CliState, console

DEFAULT_SERVE_PORT = 8400


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    context: typer.Context,
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on."),
    port: int = typer.Option(DEFAULT_SERVE_PORT, "--port", help="Port to serve on."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve without logins (loopback)."),
    allow_insecure: bool = typer.Option(
        False, "--allow-insecure", help="Allow --no-auth on a non-loopback address."
    ),
    log_level: str = typer.Option("warning", "--log-level"),
) -> None:
    """Serve the model endpoints (and the API) with N worker processes; Ctrl-C stops."""
    import uvicorn

    from conveyor.serving.app import LOG_LEVEL_VARIABLE

    state: CliState = context.obj
    settings = state.settings
    auth_required = settings.auth_required and not no_auth
    _refuse_open_without_auth(host, auth_required, allow_insecure)
    state.installation.engine  # noqa: B018  (migrate the store once, before the workers start)
    os.environ["CONVEYOR_HOME"] = str(settings.home.resolve())
    os.environ["CONVEYOR_AUTH_REQUIRED"] = "true" if auth_required else "false"
    os.environ[LOG_LEVEL_VARIABLE] = log_level
    console.print(
        f"serving models on http://{host}:{port}/api/v1/endpoints with {workers} worker(s); "
        "Ctrl-C stops."
    )
    uvicorn.run(
        "conveyor.serving.app:create_serving_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
        **proxy_options(settings.forwarded_allow_ips),
        # A worker imports the models and loads the endpoints before it answers uvicorn's
        # health check; the default 5 s kills and respawns workers on a busy machine.
        timeout_worker_healthcheck=60,
    )
