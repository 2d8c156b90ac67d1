"""Host hardware: the conveyor_host_* metrics and GET /api/v1/hardware report this machine."""

from __future__ import annotations

import shutil

import psutil
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from conveyor.api.app import create_app
from conveyor.auth.service import create_token
from conveyor.monitoring.hardware import (
    HostCollector,
    HostMonitor,
    disks,
    gpus,
    parse_nvidia_smi,
)
from support.monitoring import sample

NVIDIA_SMI_OUTPUT = """0, NVIDIA A100-SXM4-40GB, 87, 40960, 1024
1, NVIDIA A100-SXM4-40GB, [N/A], 40960, 0
"""


def test_nvidia_smi_rows_become_gpus_and_unreadable_rows_are_skipped() -> None:
    [gpu] = parse_nvidia_smi(NVIDIA_SMI_OUTPUT)
    assert gpu.index == "0" and gpu.name == "NVIDIA A100-SXM4-40GB"
    assert gpu.utilization_ratio == 0.87
    assert gpu.memory_total_bytes == 40960 * 2**20 and gpu.memory_used_bytes == 2**30


def test_host_metrics_match_the_machine() -> None:
    registry = CollectorRegistry()
    registry.register(HostCollector())
    assert sample(registry, "conveyor_host_cpus") == psutil.cpu_count()
    assert sample(registry, "conveyor_host_memory_bytes") == psutil.virtual_memory().total
    assert sample(registry, "conveyor_host_cpu_seconds_total", mode="idle") > 0
    root = next(disk for disk in disks() if disk.mountpoint == "/")
    assert sample(registry, "conveyor_host_disk_size_bytes", mountpoint="/") == root.total_bytes
    assert sample(registry, "conveyor_host_gpus") == len(gpus())


def test_cpu_usage_is_measured_between_snapshots() -> None:
    monitor = HostMonitor()
    sum(range(2_000_000))  # some work between the two samples
    usage = monitor.snapshot()["cpu"]["usage_ratio"]
    assert 0.0 <= usage <= 1.0


def test_hardware_route_needs_a_login_and_reports_host_and_storage(installation) -> None:
    with installation.sessions.begin() as session:
        token = create_token(session, "look", "viewer")
    client = TestClient(create_app(installation, auth_required=True))
    assert client.get("/api/v1/hardware").status_code == 401
    response = client.get("/api/v1/hardware", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["cpu"]["count"] == psutil.cpu_count()
    assert body["memory"]["total_bytes"] == psutil.virtual_memory().total
    assert any(disk["mountpoint"] == "/" for disk in body["disks"])
    assert body["gpus"] == [] or all("utilization_ratio" in gpu for gpu in body["gpus"])
    storage_disk = shutil.disk_usage(installation.storage.root)
    assert body["storage"]["total_bytes"] == storage_disk.total
