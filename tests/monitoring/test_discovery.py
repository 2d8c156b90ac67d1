"""Prometheus file_sd targets from the Ray node list, by function and by command."""

from __future__ import annotations

import json
from pathlib import Path

import ray
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.monitoring.discovery import node_targets, write_targets


def _node(address: str, alive: bool = True, gpus: float = 0, head: bool = False) -> dict:  # type: ignore[type-arg]
    resources = {"CPU": 4.0, "GPU": gpus} | ({"node:__internal_head__": 1.0} if head else {})
    return {
        "NodeManagerAddress": address,
        "NodeManagerHostname": f"host-{address}",
        "Alive": alive,
        "Resources": resources,
    }


def test_alive_nodes_become_targets_with_their_hostname_and_role() -> None:
    nodes = [
        _node("10.0.0.2"),
        _node("10.0.0.1", head=True),
        _node("10.0.0.3", alive=False),
        _node("fd00::4", gpus=2),
    ]
    assert node_targets(nodes, port=9100) == [
        {"targets": ["10.0.0.1:9100"], "labels": {"node": "host-10.0.0.1", "ray_head": "true"}},
        {"targets": ["10.0.0.2:9100"], "labels": {"node": "host-10.0.0.2", "ray_head": "false"}},
        {"targets": ["[fd00::4]:9100"], "labels": {"node": "host-fd00::4", "ray_head": "false"}},
    ]
    assert [group["targets"] for group in node_targets(nodes, 9400, gpu_only=True)] == [
        ["[fd00::4]:9400"]
    ]


def test_write_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "targets" / "nodes.json"
    write_targets(path, [{"targets": ["a:1"], "labels": {}}])
    write_targets(path, [])
    assert json.loads(path.read_text()) == []
    assert [p.name for p in path.parent.iterdir()] == ["nodes.json"]


def test_command_writes_one_target_per_ray_node(ray_cluster: str, tmp_path: Path) -> None:
    output = tmp_path / "nodes.json"
    result = CliRunner().invoke(
        app,
        ["--home", str(tmp_path / "home"), "monitoring", "targets", "-o", str(output)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stdout
    addresses = sorted(
        f"{node['NodeManagerAddress']}:9100" for node in ray.nodes() if node["Alive"]
    )
    assert sorted(t for group in json.loads(output.read_text()) for t in group["targets"]) == (
        addresses
    )
