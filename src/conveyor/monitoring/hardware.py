"""The host this process runs on: CPU, memory, disks and NVIDIA GPUs, via psutil and NVML.

Exported as ``conveyor_host_*`` metrics and as JSON for the UI (``GET /api/v1/hardware``). In
a cluster, node_exporter (and a GPU exporter) on every node covers the other machines. GPUs are
read with ``pynvml`` when it is installed, else ``nvidia-smi`` when it is on PATH, else not.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from conveyor.store.models import utcnow

logger = logging.getLogger(__name__)
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
PSEUDO_FILE_SYSTEMS = {"squashfs", "iso9660"}  # read-only images (snaps, CDs)
NVIDIA_SMI_QUERY = "index,name,utilization.gpu,memory.total,memory.used"
NVIDIA_SMI_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Disk:
    mountpoint: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class Gpu:
    index: str
    name: str
    utilization_ratio: float
    memory_total_bytes: int
    memory_used_bytes: int


def disks() -> list[Disk]:
    """Mounted block-device file systems, one per device (bind mounts counted once)."""
    found: dict[str, Disk] = {}
    for partition in psutil.disk_partitions(all=False):
        if partition.fstype in PSEUDO_FILE_SYSTEMS or partition.device in found:
            continue
        try:
            usage = shutil.disk_usage(partition.mountpoint)
        except OSError:
            continue
        found[partition.device] = Disk(partition.mountpoint, usage.total, usage.free)
    return sorted(found.values(), key=lambda disk: disk.mountpoint)


def gpus() -> list[Gpu]:
    """NVIDIA GPUs of this host; empty without a driver."""
    try:
        return _gpus_from_nvml()
    except ImportError:
        pass
    except Exception as error:  # pynvml installed but no driver or no GPU
        logger.debug("NVML unavailable: %s", error)
        return []
    return _gpus_from_nvidia_smi()


def _gpus_from_nvml() -> list[Gpu]:
    import pynvml

    pynvml.nvmlInit()
    try:
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            busy = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0
            found.append(Gpu(str(index), _text(name), busy, int(memory.total), int(memory.used)))
        return found
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _gpus_from_nvidia_smi() -> list[Gpu]:
    command = shutil.which("nvidia-smi")
    if command is None:
        return []
    try:
        completed = subprocess.run(
            [command, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_SECONDS,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        logger.debug("nvidia-smi failed: %s", error)
        return []
    return parse_nvidia_smi(completed.stdout)


def parse_nvidia_smi(output: str) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=index,name,utilization.gpu,memory.total,memory.used
    --format=csv,noheader,nounits`` (memory in MiB); rows it cannot read are skipped."""
    found = []
    for line in output.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 5:
            continue
        index, name, busy, total, used = fields
        try:
            found.append(Gpu(index, name, float(busy) / 100.0, int(total) << 20, int(used) << 20))
        except ValueError:  # "[N/A]" on some boards
            continue
    return found


class HostMonitor:
    """Samples this host; CPU usage is measured between consecutive snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cpu_times = psutil.cpu_times()

    def cpu_usage_ratio(self) -> float:
        """Share of CPU time spent busy since the previous call (or since start)."""
        with self._lock:
            current = psutil.cpu_times()
            previous, self._cpu_times = self._cpu_times, current
        elapsed = _total_cpu(current) - _total_cpu(previous)
        idle = _idle_cpu(current) - _idle_cpu(previous)
        return min(1.0, max(0.0, 1.0 - idle / elapsed)) if elapsed > 0 else 0.0

    def snapshot(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        return {
            "hostname": socket.gethostname(),
            "collected_at": utcnow().isoformat() + "Z",
            "cpu": {
                "count": psutil.cpu_count() or 0,
                "usage_ratio": round(self.cpu_usage_ratio(), 4),
                "load_average": list(psutil.getloadavg()),
            },
            "memory": {"total_bytes": memory.total, "available_bytes": memory.available},
            "disks": [asdict(disk) for disk in disks()],
            "gpus": [asdict(gpu) for gpu in gpus()],
        }


def _total_cpu(times: Any) -> float:
    return sum(getattr(times, mode, 0.0) for mode in CPU_MODES)


def _idle_cpu(times: Any) -> float:
    return times.idle + getattr(times, "iowait", 0.0)


class HostCollector(Collector):
    """``conveyor_host_*``: this host's CPU time, memory, disks and GPUs."""

    def collect(self) -> Iterator[Metric]:
        yield from _cpu_metrics()
        memory = psutil.virtual_memory()
        yield GaugeMetricFamily(
            "conveyor_host_memory_bytes", "Physical memory of this host", value=memory.total
        )
        yield GaugeMetricFamily(
            "conveyor_host_memory_available_bytes",
            "Memory available to new processes without swapping",
            value=memory.available,
        )
        yield from _disk_metrics(disks())
        yield from _gpu_metrics(gpus())


def _cpu_metrics() -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "conveyor_host_cpus", "Logical CPUs of this host", value=psutil.cpu_count() or 0
    )
    seconds = CounterMetricFamily(
        "conveyor_host_cpu_seconds", "CPU time of this host by mode, all CPUs", labels=["mode"]
    )
    times = psutil.cpu_times()
    for mode in CPU_MODES:
        if hasattr(times, mode):
            seconds.add_metric([mode], getattr(times, mode))
    yield seconds


def _disk_metrics(found: list[Disk]) -> Iterator[Metric]:
    size = GaugeMetricFamily(
        "conveyor_host_disk_size_bytes", "Size of a mounted file system", labels=["mountpoint"]
    )
    free = GaugeMetricFamily(
        "conveyor_host_disk_free_bytes",
        "Free bytes of a mounted file system",
        labels=["mountpoint"],
    )
    for disk in found:
        size.add_metric([disk.mountpoint], disk.total_bytes)
        free.add_metric([disk.mountpoint], disk.free_bytes)
    yield size
    yield free


def _gpu_metrics(found: list[Gpu]) -> Iterator[Metric]:
    yield GaugeMetricFamily("conveyor_host_gpus", "NVIDIA GPUs on this host", value=len(found))
    busy = GaugeMetricFamily(
        "conveyor_host_gpu_utilization_ratio",
        "Share of time a GPU was busy over the driver's last sample period",
        labels=["gpu", "name"],
    )
    total = GaugeMetricFamily(
        "conveyor_host_gpu_memory_bytes", "Memory of a GPU", labels=["gpu", "name"]
    )
    used = GaugeMetricFamily(
        "conveyor_host_gpu_memory_used_bytes", "Memory in use on a GPU", labels=["gpu", "name"]
    )
    for gpu in found:
        busy.add_metric([gpu.index, gpu.name], gpu.utilization_ratio)
        total.add_metric([gpu.index, gpu.name], gpu.memory_total_bytes)
        used.add_metric([gpu.index, gpu.name], gpu.memory_used_bytes)
    yield from (busy, total, used)
