"""``monitoring targets``: Prometheus service discovery files from the Ray node list."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from conveyor.cli.state import CliState, console
from conveyor.errors import ConfigurationError

monitoring_app = typer.Typer(help="Monitoring: Prometheus service discovery.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(monitoring_app, name="monitoring")


@monitoring_app.command()
def targets(
    context: typer.Context,
    output: Path = typer.Option(..., "--output", "-o", help="file_sd JSON file to (re)write."),
    port: int = typer.Option(
        None, "--port", help="Exporter port on every node (default 9100, node_exporter's)."
    ),
    gpu_only: bool = typer.Option(False, "--gpu-only", help="Only nodes with GPUs (GPU exporter)."),
    ray_address: str = typer.Option(None, "--ray-address", help="Ray cluster (default: auto)."),
) -> None:
    """Write one Prometheus target per alive Ray node (node_exporter by default)."""
    # Imported here: conveyor.monitoring loads the metrics stack, which no other command needs.
    from conveyor.monitoring.discovery import NODE_EXPORTER_PORT, node_targets, write_targets

    state: CliState = context.obj
    nodes = _ray_nodes(ray_address or state.settings.ray_address)
    groups = node_targets(nodes, port or NODE_EXPORTER_PORT, gpu_only)
    write_targets(output, groups)
    console.print(f"wrote {len(groups)} targets to {output}")


def _ray_nodes(address: str | None) -> list[dict[str, Any]]:
    import ray

    if not ray.is_initialized():
        try:
            ray.init(
                address=address or "auto",
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError) as error:
            raise ConfigurationError(
                f"could not reach a Ray cluster at {address or 'auto'} ({error}); pass "
                "--ray-address HOST:PORT of the head node."
            ) from error
    return ray.nodes()
