"""Monitoring: Prometheus metrics of a Conveyor process, host hardware, service discovery.

:func:`create_metrics` builds the one registry a process serves at ``/metrics``: the
controller, ingest and the API count into it; collectors read the store, storage, Ray and the
host when Prometheus scrapes.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from conveyor.monitoring.collectors import RayCollector, StorageCollector, StoreCollector
from conveyor.monitoring.hardware import HostCollector, HostMonitor
from conveyor.monitoring.metrics import ConveyorMetrics
from conveyor.pipeline.registry import PipelineRegistry
from conveyor.storage.files import Storage

__all__ = ["ConveyorMetrics", "HostMonitor", "create_metrics"]


def create_metrics(
    sessions: sessionmaker[Session], storage: Storage, pipelines: PipelineRegistry
) -> ConveyorMetrics:
    metrics = ConveyorMetrics()
    metrics.initialise(pipelines)
    metrics.registry.register(StoreCollector(sessions, pipelines.names))
    metrics.registry.register(StorageCollector(storage))
    metrics.registry.register(RayCollector())
    metrics.registry.register(HostCollector())
    return metrics
