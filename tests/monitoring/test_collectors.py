"""Scrape-time gauges: the store (items, queue age), storage space and the Ray cluster."""

from __future__ import annotations

import shutil
from datetime import timedelta

import ray
from prometheus_client import CollectorRegistry
from sqlalchemy import update

from conveyor.monitoring.collectors import (
    RayCollector,
    StorageCollector,
    StoreCollector,
    ray_resource_metrics,
)
from conveyor.store.models import Item, utcnow
from support.monitoring import sample


def test_queue_age_is_the_oldest_queued_item_per_pipeline(installation) -> None:
    installation.submitter.submit_records("noop", [{"n": n} for n in range(3)])
    with installation.sessions.begin() as session:
        session.execute(update(Item).values(queued_at=utcnow() - timedelta(seconds=120)))
    registry = CollectorRegistry()
    registry.register(StoreCollector(installation.sessions, installation.registry.names))
    assert 120 <= sample(registry, "conveyor_queue_oldest_age_seconds", pipeline="noop") < 150
    assert sample(registry, "conveyor_queue_oldest_age_seconds", pipeline="csv_profile") == 0
    assert sample(registry, "conveyor_items", pipeline="noop", status="queued") == 3


def test_a_store_that_fails_leaves_its_metrics_out_of_the_scrape() -> None:
    def broken():  # type: ignore[no-untyped-def]
        raise ConnectionError("database is down")

    registry = CollectorRegistry()
    registry.register(StoreCollector(broken, lambda: ["noop"]))
    assert registry.get_sample_value("conveyor_items", {}) is None


def test_storage_space_is_that_of_the_storage_file_system(installation) -> None:
    registry = CollectorRegistry()
    registry.register(StorageCollector(installation.storage))
    usage = shutil.disk_usage(installation.storage.root)
    assert sample(registry, "conveyor_storage_size_bytes") == usage.total
    assert abs(sample(registry, "conveyor_storage_free_bytes") - usage.free) < 1 << 30


def test_ray_capacity_and_nodes_come_from_the_connected_cluster(ray_cluster: str) -> None:
    registry = CollectorRegistry()
    registry.register(RayCollector())
    assert sample(registry, "conveyor_ray_nodes", state="alive") == len(ray.nodes())
    assert sample(registry, "conveyor_ray_cpus") == ray.cluster_resources()["CPU"]
    assert sample(registry, "conveyor_ray_gpus") == ray.cluster_resources().get("GPU", 0)
    assert sample(registry, "conveyor_ray_object_store_bytes") > 0


def test_reserved_resources_are_capacity_minus_available() -> None:
    metrics = {
        metric.name: metric.samples[0].value
        for metric in ray_resource_metrics(
            {"CPU": 8.0, "GPU": 2.0, "memory": 1000.0}, {"CPU": 3.0, "GPU": 2.0, "memory": 250.0}
        )
    }
    assert metrics["conveyor_ray_cpus"] == 8 and metrics["conveyor_ray_cpus_used"] == 5
    assert metrics["conveyor_ray_gpus_used"] == 0
    assert metrics["conveyor_ray_memory_used_bytes"] == 750
    assert metrics["conveyor_ray_object_store_bytes"] == 0
