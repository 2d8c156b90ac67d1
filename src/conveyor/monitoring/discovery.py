"""Prometheus file-based service discovery from the Ray node list, instead of hard-coded IPs.

``conveyor monitoring targets -o targets/nodes.json`` writes one target group per alive Ray node
(its address and an exporter port); Prometheus re-reads the file when it changes. Run it again
(cron, a systemd timer) as nodes join and leave.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

NODE_EXPORTER_PORT = 9100
HEAD_RESOURCE = "node:__internal_head__"


def node_targets(
    nodes: list[dict[str, Any]], port: int = NODE_EXPORTER_PORT, gpu_only: bool = False
) -> list[dict[str, Any]]:
    """file_sd target groups for the alive nodes of ``ray.nodes()``, sorted by address."""
    groups = []
    for node in nodes:
        resources = node.get("Resources") or {}
        if not node.get("Alive") or (gpu_only and not resources.get("GPU")):
            continue
        address = node["NodeManagerAddress"]
        host = f"[{address}]" if ":" in address else address
        labels = {
            "node": node.get("NodeManagerHostname") or address,
            "ray_head": "true" if HEAD_RESOURCE in resources else "false",
        }
        groups.append({"targets": [f"{host}:{port}"], "labels": labels})
    return sorted(groups, key=lambda group: group["targets"][0])


def write_targets(path: Path, groups: list[dict[str, Any]]) -> None:
    """Write atomically: Prometheus watches the file and must never read half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w") as out:
        json.dump(groups, out, indent=2)
        out.write("\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
