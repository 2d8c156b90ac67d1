"""What the pages compute from API data: step summaries, the DAG drawing, formatting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
import pytest

from conveyor.pipelines.csv_profile import csv_profile
from conveyor.pipelines.noop import noop
from conveyor.web import views
from conveyor.web.templating import GENERIC_RENDERER, renderer_for, templates, value_kind

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


@dataclass
class Run:
    step: str
    attempt: int
    status: str
    seconds: float | None = None


def test_summaries_follow_the_latest_attempt_and_count_every_attempt() -> None:
    runs = [
        Run("a", 1, "succeeded", 0.5),
        Run("b", 1, "failed", 1.0),
        Run("b", 2, "running"),
    ]
    steps = views.summarize_steps(DIAMOND, runs)
    assert list(steps) == ["a", "b", "c", "d"]
    assert steps["b"] == views.StepSummary("b", "running", 2, None)
    assert steps["c"].status == "pending" and steps["c"].attempts == 0


def test_steps_that_ran_but_left_the_dag_are_still_shown() -> None:
    steps = views.summarize_steps({"a": []}, [Run("old", 1, "succeeded", 2.0)])
    assert list(steps) == ["a", "old"]


def test_dag_layers_put_each_step_below_its_deepest_dependency() -> None:
    assert views.dag_layers(DIAMOND) == [["a"], ["b", "c"], ["d"]]
    assert views.dag_layers({"x": [], "y": ["x"], "z": ["x", "y"]}) == [["x"], ["y"], ["z"]]


def test_drawing_has_one_edge_per_dependency_and_no_overlapping_nodes() -> None:
    drawing = views.draw_dag(DIAMOND, views.summarize_steps(DIAMOND, []))
    assert len(drawing.edges) == 4
    corners = {(node.x, node.y) for node in drawing.nodes}
    assert len(corners) == 4
    for node in drawing.nodes:
        assert 0 <= node.x <= drawing.width - views.NODE_WIDTH
        assert 0 <= node.y <= drawing.height - views.NODE_HEIGHT


def test_formatting() -> None:
    assert views.format_seconds(None) == views.MISSING
    assert views.format_seconds(0.0421) == "42 ms"
    assert views.format_seconds(0.00031) == "0.3 ms"
    assert views.format_seconds(3.21) == "3.2 s"
    assert views.format_seconds(125) == "2 min 5 s"
    assert views.format_seconds(7300) == "2 h 1 min"
    assert views.format_bytes(52) == "52 B"
    assert views.format_bytes(3 * 1024 * 1024) == "3.0 MB"
    assert views.drain_eta_text(None, 0) == "queue empty"
    assert views.drain_eta_text(None, 5).startswith("no recent finishes")
    assert views.drain_eta_text(90, 5) == "1 min 30 s"


def test_count_rows_fill_missing_statuses_and_add_a_sum() -> None:
    rows = views.count_rows({"b": {"failed": 1}, "a": {"queued": 2, "succeeded": 3}})
    assert [row["pipeline"] for row in rows] == ["a", "b", None]
    assert rows[0]["running"] == 0 and rows[0]["total"] == 5
    assert rows[-1]["failed"] == 1 and rows[-1]["total"] == 6


def test_value_kinds_and_renderer_choice() -> None:
    assert value_kind({"a": 1}) == "mapping"
    assert value_kind([1, "x", None]) == "flat_list"
    assert value_kind([[1, 2]]) == "list"
    assert value_kind(True) == "boolean" and value_kind(2.5) == "number"
    assert value_kind(None) == "null" and value_kind("x") == "text"
    own = renderer_for(csv_profile)
    assert own != GENERIC_RENDERER and "incomplete rows" in _render(own, CSV_RESULT)
    assert renderer_for(noop) == GENERIC_RENDERER
    assert renderer_for(None) == GENERIC_RENDERER  # an item of a pipeline no longer installed


def test_only_registered_renderer_files_load() -> None:
    with pytest.raises(jinja2.TemplateNotFound):
        templates.env.get_template("pipeline-renderer:/etc/hostname")


CSV_RESULT = {"rows": 3, "columns": 2, "numeric_columns": ["a"], "profile": {}}


def _render(template: str, result: dict[str, Any]) -> str:
    return templates.env.get_template(template).render(result=result, item={})


def test_hardware_gauges_show_use_of_cpu_memory_storage_and_each_gpu() -> None:
    gib = 1 << 30
    snapshot = {
        "cpu": {"count": 8, "usage_ratio": 0.25, "load_average": [2.0, 1.5, 1.0]},
        "memory": {"total_bytes": 16 * gib, "available_bytes": 4 * gib},
        "storage": {"total_bytes": 100 * gib, "free_bytes": 5 * gib},
        "gpus": [
            {
                "index": "0",
                "name": "A100",
                "utilization_ratio": 0.5,
                "memory_total_bytes": 40 * gib,
                "memory_used_bytes": 10 * gib,
            }
        ],
    }
    cpu, memory, storage, gpu = views.hardware_gauges(snapshot)
    assert (cpu.percent, cpu.detail) == (25.0, "8 CPUs, load 2.00, 1.50, 1.00")
    assert memory.percent == 75.0 and memory.detail == "12.0 GB used of 16.0 GB, 4.0 GB free"
    assert storage.name == "Storage volume" and storage.percent == 95.0
    assert gpu.name == "GPU 0 A100" and gpu.percent == 50.0 and "10.0 GB of 40.0 GB" in gpu.detail
    remote = views.hardware_gauges(snapshot | {"storage": None, "gpus": []})
    assert [gauge.name for gauge in remote] == ["CPU", "Memory"]


def test_key_metric_prefers_the_held_out_value_of_the_gate_metric() -> None:
    versions = [{"cv_accuracy": 0.8, "heldout_roc_auc": 0.9}, {"heldout_f1": 0.7}]
    assert views.metric_names(versions) == ["heldout_f1", "heldout_roc_auc", "cv_accuracy"]
    assert views.key_metric_name("roc_auc", versions) == "heldout_roc_auc"
    assert views.key_metric_name("rmse", versions) == "heldout_f1"
    assert views.key_metric_name(None, []) is None
