"""What the dashboard shows, for the /api/v1 stats, workers and hardware routes and the web
dashboard alike: item counts and throughput, step durations, Ray workers, this host."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from conveyor.core.durations import summarize_durations
from conveyor.engine.throughput import drain_eta_seconds, per_minute, queue_depth_per_minute
from conveyor.installation import Installation
from conveyor.monitoring.collectors import storage_usage
from conveyor.monitoring.hardware import HostMonitor
from conveyor.store.history import queue_movements, recent_step_run_times
from conveyor.store.models import Item, utcnow
from conveyor.store.queries import counts_by_status, running_step_runs

RUNNING_SHOWN = 50
MINUTES = 60
WINDOW = timedelta(minutes=MINUTES)
STEP_RUNS_LIMIT = 1000
_host = HostMonitor()  # one per process: CPU usage is measured between calls


def host_snapshot(installation: Installation) -> dict[str, Any]:
    """The host running this process (the same numbers as the ``conveyor_host_*`` metrics).

    ``cpu.usage_ratio`` is the busy share since the previous call; ``storage`` is null when
    storage is remote. Other machines of a cluster are covered by node_exporter."""
    snapshot = _host.snapshot()
    snapshot["storage"] = storage_usage(installation.storage)
    return snapshot


def item_stats(installation: Installation) -> dict[str, Any]:
    """Counts by status per pipeline, items finished per minute and items waiting or running
    at the end of each minute (last hour), drain ETA."""
    now = utcnow()
    with installation.sessions() as session:
        counts = counts_by_status(session)
        finished = session.scalars(
            select(Item.finished_at).where(Item.finished_at >= now - WINDOW)
        ).all()
        movements = queue_movements(session, now - timedelta(minutes=MINUTES - 1), now)
    series = per_minute(list(finished), now, minutes=MINUTES)
    depth = queue_depth_per_minute(
        movements.waiting_at_start, movements.created_at, movements.finished_at, now, MINUTES
    )
    waiting = sum(
        by.get("queued", 0) + by.get("running", 0) + by.get("retrying", 0) for by in counts.values()
    )
    return {
        "counts": counts,
        "throughput_per_minute": series,
        "queue_depth_per_minute": depth,
        "queue": waiting,
        "drain_eta_seconds": drain_eta_seconds(waiting, series),
        "generated_at": now.isoformat() + "Z",
    }


def step_duration_stats(installation: Installation) -> dict[str, Any]:
    """Median and 95th percentile run time per pipeline and step, over the succeeded and failed
    step runs of the last hour (at most the latest 1000), as the step duration histogram sees
    them."""
    now = utcnow()
    with installation.sessions() as session:
        runs = recent_step_run_times(session, now - WINDOW, STEP_RUNS_LIMIT)
    order = {pipeline.name: list(pipeline.order) for pipeline in installation.registry}
    return {
        "window_seconds": int(WINDOW.total_seconds()),
        "max_runs": STEP_RUNS_LIMIT,
        "runs": len(runs),
        "steps": [asdict(row) for row in summarize_durations(runs, order)],
        "generated_at": now.isoformat() + "Z",
    }


def worker_stats(installation: Installation) -> dict[str, Any]:
    """Ray nodes with their resources and what is in use on each, and the step runs running
    now (empty when this process is not connected to Ray)."""
    import ray

    running = _running_steps(installation)
    if not ray.is_initialized():
        return {"connected": False, "nodes": [], "running": running}
    available_per_node = _available_per_node()
    nodes = []
    for node in ray.nodes():
        resources = node.get("Resources", {})
        free = available_per_node.get(
            node.get("NodeID"), resources if not node.get("Alive") else {}
        )
        nodes.append(
            {
                "node_id": node.get("NodeID"),
                "address": node.get("NodeManagerAddress"),
                "alive": node.get("Alive"),
                "cpus": resources.get("CPU", 0),
                "gpus": resources.get("GPU", 0),
                "memory_bytes": resources.get("memory", 0),
                "cpus_in_use": resources.get("CPU", 0) - free.get("CPU", 0),
                "gpus_in_use": resources.get("GPU", 0) - free.get("GPU", 0),
            }
        )
    available = ray.available_resources()
    total = ray.cluster_resources()
    return {
        "connected": True,
        "nodes": nodes,
        "cpus_total": total.get("CPU", 0),
        "cpus_in_use": total.get("CPU", 0) - available.get("CPU", 0),
        "gpus_total": total.get("GPU", 0),
        "gpus_in_use": total.get("GPU", 0) - available.get("GPU", 0),
        "running": running,
    }


def _available_per_node() -> dict[str, dict[str, float]]:
    # Ray has no public per-node availability call without its dashboard; this one is internal,
    # so a failure only hides the per-node figures.
    try:
        from ray._private.state import available_resources_per_node

        return available_resources_per_node()
    except Exception:
        return {}


def _running_steps(installation: Installation) -> list[dict[str, Any]]:
    with installation.sessions() as session:
        rows = running_step_runs(session, RUNNING_SHOWN)
    return [
        {
            "item_id": run.item_id,
            "pipeline": item.pipeline,
            "input": item.input_name,
            "step": run.step,
            "attempt": run.attempt,
            "submitted_at": run.submitted_at.isoformat() + "Z",
        }
        for run, item in rows
    ]
