"""What the pages show, computed from API data: step summaries, the DAG drawing, formatting.

Plain functions over plain data, so they are tested without a browser or a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from conveyor.core.lifecycle import FINAL_STATUSES, ItemStatus

ITEM_STATUSES = [status.value for status in ItemStatus]
NODE_WIDTH, NODE_HEIGHT = 168, 52
COLUMN_GAP, ROW_GAP = 24, 44
MISSING = "\u2013"  # an en dash: shown where there is no value yet


class StepRunLike(Protocol):
    step: str
    attempt: int
    status: str
    seconds: float | None


@dataclass(frozen=True)
class StepSummary:
    """One step of an item: the state of its latest attempt, and how many attempts so far."""

    name: str
    status: str  # a step run status, or "pending" before the first attempt
    attempts: int
    seconds: float | None


@dataclass(frozen=True)
class DagNode:
    step: StepSummary
    x: int
    y: int


@dataclass(frozen=True)
class DagEdge:
    path: str  # SVG path data, from the bottom of the dependency to the top of the dependent


@dataclass(frozen=True)
class DagDrawing:
    nodes: list[DagNode]
    edges: list[DagEdge]
    width: int
    height: int


def summarize_steps(
    dag: dict[str, list[str]], runs: Sequence[StepRunLike]
) -> dict[str, StepSummary]:
    """A summary per step, in DAG order; steps that ran but are not in the DAG come last."""
    by_step: dict[str, list[StepRunLike]] = {name: [] for name in dag}
    for run in runs:
        by_step.setdefault(run.step, []).append(run)
    summaries = {}
    for name, step_runs in by_step.items():
        latest = max(step_runs, key=lambda run: run.attempt, default=None)
        summaries[name] = StepSummary(
            name=name,
            status=latest.status if latest else "pending",
            attempts=len(step_runs),
            seconds=latest.seconds if latest else None,
        )
    return summaries


def dag_layers(dag: dict[str, list[str]]) -> list[list[str]]:
    """Steps grouped by depth: a step sits one layer below its deepest dependency."""
    depth: dict[str, int] = {}

    def depth_of(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            parents = [p for p in dag.get(name, []) if p not in seen]
            depth[name] = 1 + max((depth_of(p, seen | {name}) for p in parents), default=-1)
        return depth[name]

    layers: list[list[str]] = []
    for name in dag:
        level = depth_of(name)
        layers.extend([] for _ in range(level + 1 - len(layers)))
        layers[level].append(name)
    return layers


def draw_dag(dag: dict[str, list[str]], steps: dict[str, StepSummary]) -> DagDrawing:
    """Top-to-bottom layout: narrow on a phone for the usual long, thin pipelines."""
    layers = dag_layers({name: dag.get(name, []) for name in steps})
    widest = max((len(layer) for layer in layers), default=0)
    width = max(widest * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP, NODE_WIDTH)
    positions: dict[str, tuple[int, int]] = {}
    for row, layer in enumerate(layers):
        offset = (width - (len(layer) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP)) // 2
        for column, name in enumerate(layer):
            positions[name] = (
                offset + column * (NODE_WIDTH + COLUMN_GAP),
                row * (NODE_HEIGHT + ROW_GAP),
            )
    edges = [
        _edge(positions[parent], positions[name])
        for name in steps
        for parent in dag.get(name, [])
        if parent in positions
    ]
    nodes = [DagNode(steps[name], *positions[name]) for name in steps]
    height = max(len(layers) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP, NODE_HEIGHT)
    return DagDrawing(nodes, edges, width, height)


def _edge(start: tuple[int, int], end: tuple[int, int]) -> DagEdge:
    x1, y1 = start[0] + NODE_WIDTH // 2, start[1] + NODE_HEIGHT
    x2, y2 = end[0] + NODE_WIDTH // 2, end[1] - 4
    bend = (y2 - y1) // 2
    return DagEdge(f"M{x1},{y1} C{x1},{y1 + bend} {x2},{y2 - bend} {x2},{y2}")


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    if seconds < 0.01:  # quick steps: "0 ms" would read as "did not run"
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_bytes(size: int | None) -> str:
    if size is None:
        return MISSING
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def format_time(moment: datetime | None) -> str:
    """UTC, to the second: the store keeps naive UTC."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else MISSING


def duration(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def drain_eta_text(eta_seconds: float | None, waiting: int) -> str:
    if waiting == 0:
        return "queue empty"
    if eta_seconds is None:
        return "no recent finishes to estimate from"
    return format_seconds(eta_seconds)


def count_rows(counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """One row per pipeline with every status (zero when absent) and a total, plus a sum row."""
    rows = [
        {"pipeline": name, **{s: by.get(s, 0) for s in ITEM_STATUSES}, "total": sum(by.values())}
        for name, by in sorted(counts.items())
    ]
    if len(rows) > 1:
        total = {s: sum(row[s] for row in rows) for s in [*ITEM_STATUSES, "total"]}
        rows.append({"pipeline": None, **total})
    return rows


def preview_columns(rows: Iterable[dict[str, Any]], limit: int = 6) -> list[str]:
    """The first few result columns across rows, for a short preview table."""
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns and len(columns) < limit:
                columns.append(key)
    return columns


@dataclass(frozen=True)
class Gauge:
    """One line of the hardware panel: how full something is, and the numbers behind it."""

    name: str
    percent: float
    detail: str


def hardware_gauges(snapshot: dict[str, Any]) -> list[Gauge]:
    """CPU, memory, the storage volume (when local) and each GPU, from ``GET /api/v1/hardware``."""
    cpu, memory, storage = snapshot["cpu"], snapshot["memory"], snapshot.get("storage")
    load = ", ".join(f"{value:.2f}" for value in cpu["load_average"])
    gauges = [
        Gauge("CPU", cpu["usage_ratio"] * 100, f"{cpu['count']} CPUs, load {load}"),
        _used_of("Memory", memory["total_bytes"], memory["available_bytes"]),
    ]
    if storage:
        gauges.append(_used_of("Storage volume", storage["total_bytes"], storage["free_bytes"]))
    for gpu in snapshot["gpus"]:
        used, total = gpu["memory_used_bytes"], gpu["memory_total_bytes"]
        memory_text = f"memory {format_bytes(used)} of {format_bytes(total)}"
        gauges.append(
            Gauge(f"GPU {gpu['index']} {gpu['name']}", gpu["utilization_ratio"] * 100, memory_text)
        )
    return gauges


def _used_of(name: str, total: int, free: int) -> Gauge:
    used = max(0, total - free)
    detail = f"{format_bytes(used)} used of {format_bytes(total)}, {format_bytes(free)} free"
    return Gauge(name, used / total * 100 if total else 0.0, detail)


def duration_scale(rows: Iterable[dict[str, Any]]) -> float:
    """The slowest 95th percentile: the full width of the step duration bars."""
    return max((row["p95_seconds"] for row in rows), default=0.0) or 1.0


def metric_names(metric_sets: Iterable[Mapping[str, float]]) -> list[str]:
    """Every metric any version has, held-out ones first, for the side-by-side table."""
    names = {name for metrics in metric_sets for name in metrics}
    return sorted(names, key=lambda name: (not name.startswith("heldout_"), name))


def key_metric_name(metric: str | None, metric_sets: Sequence[Mapping[str, float]]) -> str | None:
    """The metric a model is judged by, as its versions record it (held-out when there is one)."""
    names = metric_names(metric_sets)
    for candidate in (f"heldout_{metric}", metric) if metric else ():
        if candidate in names:
            return candidate
    return names[0] if names else None


class VersionLike(Protocol):
    @property
    def version(self) -> int: ...
    @property
    def metrics(self) -> Mapping[str, float]: ...


def metric_chart(versions: Iterable[VersionLike]) -> dict[str, Any]:
    """Chart data for the model page: versions oldest first, each metric's value (or null)."""
    ordered = sorted(versions, key=lambda version: version.version)
    names = metric_names([version.metrics for version in ordered])
    return {
        "versions": [version.version for version in ordered],
        "metrics": {name: [version.metrics.get(name) for version in ordered] for name in names},
    }
