"""/api/v1/hardware: this host's CPU, memory, disks, GPUs and storage space, for the UI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from conveyor.api.security import viewer
from conveyor.monitoring.collectors import storage_usage
from conveyor.monitoring.hardware import HostMonitor

router = APIRouter(tags=["monitoring"])
_host = HostMonitor()  # one per process: CPU usage is measured between calls


@router.get("/hardware", dependencies=[viewer])
def hardware(request: Request) -> dict[str, Any]:
    """The host running this API (the same numbers as the ``conveyor_host_*`` metrics).

    ``cpu.usage_ratio`` is the busy share since the previous call; ``storage`` is null when
    storage is remote. Other machines of a cluster are covered by node_exporter."""
    snapshot = _host.snapshot()
    snapshot["storage"] = storage_usage(request.app.state.installation.storage)
    return snapshot
