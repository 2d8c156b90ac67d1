"""Gauges read at scrape time: the store (items, queue age), storage space, the Ray cluster.

They describe state every process can see, so they are computed when Prometheus asks instead of
being counted; a failing source leaves its metrics out of that scrape instead of failing it.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from conveyor.storage.files import Storage
from conveyor.store.models import utcnow
from conveyor.store.queries import counts_by_status, oldest_queued_at

logger = logging.getLogger(__name__)


class StoreCollector(Collector):
    """Items by pipeline and status, and the age of each pipeline's oldest queued item."""

    def __init__(self, sessions: Callable[[], Session], pipelines: Callable[[], Iterable[str]]):
        self.sessions = sessions
        self.pipelines = pipelines

    def collect(self) -> Iterator[Metric]:
        try:
            with self.sessions() as session:
                counts = counts_by_status(session)
                queued = [pipeline for pipeline, by in counts.items() if by.get("queued")]
                oldest = oldest_queued_at(session, queued)
        except Exception as error:  # the store is down: /readyz says so, the scrape goes on
            logger.warning("store metrics skipped: %s", error)
            return
        items = GaugeMetricFamily(
            "conveyor_items",
            "Items in the store by pipeline and status",
            labels=["pipeline", "status"],
        )
        for pipeline, by_status in counts.items():
            for status, count in by_status.items():
                items.add_metric([pipeline, status], count)
        yield items
        yield self._queue_age(oldest)

    def _queue_age(self, oldest: dict[str, Any]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "conveyor_queue_oldest_age_seconds",
            "How long the oldest queued item of a pipeline has waited (0: nothing queued)",
            labels=["pipeline"],
        )
        now = utcnow()
        for pipeline in sorted(set(self.pipelines()) | set(oldest)):
            queued_at = oldest.get(pipeline)
            age = (now - queued_at).total_seconds() if queued_at else 0.0
            family.add_metric([pipeline], max(0.0, age))
        return family


def storage_usage(storage: Storage) -> dict[str, int] | None:
    """Size and free bytes of the file system holding local storage; None for remote storage."""
    if not storage.is_local:
        return None
    usage = shutil.disk_usage(storage.root)
    return {"total_bytes": usage.total, "free_bytes": usage.free}


class StorageCollector(Collector):
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def collect(self) -> Iterator[Metric]:
        try:
            usage = storage_usage(self.storage)
        except OSError as error:
            logger.warning("storage metrics skipped: %s", error)
            return
        if usage is None:
            return
        yield GaugeMetricFamily(
            "conveyor_storage_size_bytes",
            "Size of the file system holding Conveyor's storage (local storage only)",
            value=usage["total_bytes"],
        )
        yield GaugeMetricFamily(
            "conveyor_storage_free_bytes",
            "Free bytes on the file system holding Conveyor's storage (local storage only)",
            value=usage["free_bytes"],
        )


RAY_RESOURCES = (
    # (Ray resource, capacity metric, reserved metric, what it is)
    ("CPU", "conveyor_ray_cpus", "conveyor_ray_cpus_used", "CPUs"),
    ("GPU", "conveyor_ray_gpus", "conveyor_ray_gpus_used", "GPUs"),
    ("memory", "conveyor_ray_memory_bytes", "conveyor_ray_memory_used_bytes", "task memory"),
    (
        "object_store_memory",
        "conveyor_ray_object_store_bytes",
        "conveyor_ray_object_store_used_bytes",
        "object store memory",
    ),
)


class RayCollector(Collector):
    """Ray nodes and resources, when this process is connected to Ray (it never connects)."""

    def collect(self) -> Iterator[Metric]:
        import ray

        if not ray.is_initialized():
            return
        try:
            nodes = ray.nodes()
            total = ray.cluster_resources()
            available = ray.available_resources()
        except Exception as error:  # the cluster is unreachable: leave Ray metrics out
            logger.warning("Ray metrics skipped: %s", error)
            return
        yield _node_states(nodes)
        yield from ray_resource_metrics(total, available)


def _node_states(nodes: list[dict[str, Any]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "conveyor_ray_nodes", "Ray nodes by state (alive, dead)", labels=["state"]
    )
    alive = sum(1 for node in nodes if node.get("Alive"))
    family.add_metric(["alive"], alive)
    family.add_metric(["dead"], len(nodes) - alive)
    return family


def ray_resource_metrics(
    total: dict[str, float], available: dict[str, float]
) -> Iterator[GaugeMetricFamily]:
    """Capacity of alive nodes, and how much of it running tasks have reserved (Ray's logical
    resources, not measured use: hardware metrics show that)."""
    for resource, capacity_name, used_name, meaning in RAY_RESOURCES:
        capacity = float(total.get(resource, 0.0))
        used = max(0.0, capacity - float(available.get(resource, 0.0)))
        yield GaugeMetricFamily(capacity_name, f"Ray cluster capacity: {meaning}", value=capacity)
        yield GaugeMetricFamily(used_name, f"Ray {meaning} reserved by running tasks", value=used)
