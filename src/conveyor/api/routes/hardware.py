"""/api/v1/hardware: this host's CPU, memory, disks, GPUs and storage space, for the UI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from conveyor.api.security import viewer
from conveyor.monitoring.overview import host_snapshot

router = APIRouter(tags=["monitoring"])


@router.get("/hardware", dependencies=[viewer])
def hardware(request: Request) -> dict[str, Any]:
    """The host running this API (the same numbers as the ``conveyor_host_*`` metrics).

    ``cpu.usage_ratio`` is the busy share since the previous call; ``storage`` is null when
    storage is remote. Other machines of a cluster are covered by node_exporter."""
    return host_snapshot(request.app.state.installation)
