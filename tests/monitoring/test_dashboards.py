"""The shipped Grafana dashboards, checked against a real Prometheus scraping a real Conveyor.

One `conveyor up` (on the session's Ray) and node_exporter run as processes; Prometheus, started
with the shipped prometheus.yml and alerts.yml at a 1 s scrape interval, finds node_exporter
through the file_sd file `conveyor monitoring targets` writes from the Ray node list. After real
work (successes, failures, a retry, an upload), every PromQL expression of every dashboard must
return data through Prometheus's HTTP API.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

from conveyor.monitoring.discovery import node_targets, write_targets
from support.dashboards import DASHBOARD_DIR, as_promql, expressions, panels
from support.monitoring import (
    Prometheus,
    free_port,
    get_json,
    require_binary,
    stop_process,
    wait_for,
)

DEPLOY = Path(__file__).parents[2] / "deploy"
# The serving dashboard needs serving traffic: test_alert_delivery.py checks it on its stack.
SERVING_DASHBOARD = "conveyor-serving.json"
# The streams dashboard needs stream sources and sinks: test_streams_dashboard.py checks it.
STREAMS_DASHBOARD = "conveyor-streams.json"
ALL_DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))
DASHBOARDS = [
    path for path in ALL_DASHBOARDS if path.name not in (SERVING_DASHBOARD, STREAMS_DASHBOARD)
]
TESTS = Path(__file__).parents[1]
# Panels that can only have data on a host with NVIDIA GPUs.
GPU_ONLY = ("conveyor_host_gpu_utilization_ratio", "conveyor_host_gpu_memory")


@dataclass
class Stack:
    prometheus: Prometheus
    api: str
    metrics_port: int


def _start_conveyor(ray_address: str, home: Path, port: int, metrics_port: int):  # type: ignore[no-untyped-def]
    environment = os.environ | {"PYTHONPATH": str(TESTS), "CONVEYOR_INBOX_SCAN_SECONDS": "0.5"}
    command = [sys.executable, "-m", "conveyor.cli", "--home", str(home), "up"]
    command += ["--ray-address", ray_address, "--no-auth", "--port", str(port)]
    command += ["--metrics-port", str(metrics_port)]
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _start_node_exporter(address: str, port: int) -> subprocess.Popen:  # type: ignore[type-arg]
    binary = require_binary("prometheus-node-exporter")
    return subprocess.Popen(
        [binary, f"--web.listen-address={address}:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _prometheus_config(folder: Path, conveyor_port: int, node_exporter_port: int) -> dict:  # type: ignore[type-arg]
    """The shipped configuration, scraping every second, with targets written as a user would."""
    for name in ("alerts.yml",):
        shutil.copy(DEPLOY / "prometheus" / name, folder / name)
    targets = folder / "targets"
    write_targets(targets / "conveyor.json", [{"targets": [f"127.0.0.1:{conveyor_port}"]}])
    write_targets(targets / "nodes.json", node_targets(ray.nodes(), node_exporter_port))
    write_targets(targets / "gpus.json", [])
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    return config


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=30).close()


def _upload(url: str, name: str, data: bytes, pipeline: str) -> None:
    boundary = "conveyor-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="pipeline"\r\n\r\n{pipeline}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30).close()


def _drive_work(api: str) -> int:
    """Successes, permanent failures, a retried step and an upload; returns how many items."""
    records = [{"n": n} for n in range(8)] + [{"n": 8, "fail": "transient"}]
    records += [{"n": 9, "fail": "permanent"}, {"n": 10, "fail": "permanent"}]
    for record in records:
        _post(f"{api}/api/v1/items", {"pipeline": "noop", "record": record})
    _upload(f"{api}/api/v1/items", "table.csv", b"a,b\n1,2\n3,4\n", "csv_profile")
    return len(records) + 1


def _all_final(api: str) -> bool:
    counts = get_json(f"{api}/api/v1/stats")["counts"]
    waiting = ("queued", "running", "retrying")
    return not any(by_status.get(status) for by_status in counts.values() for status in waiting)


@pytest.fixture(scope="module")
def stack(ray_cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_binary("prometheus")
    folder = tmp_path_factory.mktemp("monitoring")
    port, metrics_port, node_exporter_port = free_port(), free_port(), free_port()
    node_address = next(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])
    node_exporter = _start_node_exporter(node_address, node_exporter_port)
    conveyor = _start_conveyor(ray_cluster, folder / "home", port, metrics_port)
    prometheus = None
    try:
        api = f"http://127.0.0.1:{port}"
        wait_for(lambda: get_json(f"{api}/readyz")["status"] == "ready", 120, "conveyor up")
        prometheus = Prometheus(_prometheus_config(folder, port, node_exporter_port), folder)
        # Targets first (file_sd updates apply within 5 s), so rates span the work.
        up = 'min(up{job=~"conveyor|node"}) == 1 and count(up{job=~"conveyor|node"}) == 2'
        wait_for(lambda: bool(prometheus.query(up)), 60, "both targets to be up")
        items = _drive_work(api)
        wait_for(lambda: _all_final(api), 120, "the items to finish")
        finished = "sum(conveyor_items_finished_total)"
        wait_for(lambda: prometheus.value(finished) == items, 60, "Prometheus to see the work")
        scrapes = 'min(count_over_time(up{job=~"conveyor|node"}[1m]))'
        wait_for(lambda: prometheus.value(scrapes) >= 5, 60, "a few scrapes")
        yield Stack(prometheus, api, metrics_port)
    finally:
        if prometheus is not None:
            prometheus.stop()
        output = stop_process(conveyor)
        stop_process(node_exporter)
        print(output)


def test_dashboards_use_the_provisioned_datasource_and_unique_uids() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "conveyor.yml").read_text())
    [datasource] = datasources["datasources"]
    providers = yaml.safe_load((provisioning / "dashboards" / "conveyor.yml").read_text())
    assert providers["providers"][0]["type"] == "file"
    uids = [json.loads(path.read_text())["uid"] for path in ALL_DASHBOARDS]
    assert len(set(uids)) == len(uids) == 5
    for path in ALL_DASHBOARDS:
        for panel in panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == datasource["uid"], (path.name, panel)


def test_every_dashboard_expression_returns_data(stack: Stack) -> None:
    has_gpus = stack.prometheus.value("sum(conveyor_host_gpus)") > 0
    empty = []
    for dashboard, title, expression in expressions(DASHBOARDS):
        result = stack.prometheus.query(as_promql(expression))
        values = [float(sample["value"][1]) for sample in result]
        if not any(math.isfinite(value) for value in values):
            if not has_gpus and any(name in expression for name in GPU_ONLY):
                continue  # valid PromQL (Prometheus accepted it); no GPU here to report on
            empty.append(f"{dashboard} / {title}: {expression} -> {values}")
    assert not empty, "expressions without data:\n" + "\n".join(empty)


def test_dashboard_variables_list_values(stack: Stack) -> None:
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "custom":
                continue
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
            assert match, variable["definition"]
            selector, label = as_promql(match[1]), match[2]
            url = f"{stack.prometheus.url}/api/v1/label/{label}/values?match[]={selector}"
            values = get_json(url.replace(" ", "%20").replace('"', "%22"))["data"]
            assert values, f"{path.name}: variable {variable['name']} has no values"


def test_alert_rules_evaluate_on_live_data_and_only_the_failures_alert(stack: Stack) -> None:
    groups = get_json(f"{stack.prometheus.url}/api/v1/rules")["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    shipped = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    assert len(rules) == sum(len(group["rules"]) for group in shipped) == 12
    assert all(rule["health"] == "ok" for rule in rules), rules

    def active() -> list[tuple[str, str | None]]:
        alerts = get_json(f"{stack.prometheus.url}/api/v1/alerts")["data"]["alerts"]
        return [(a["labels"]["alertname"], a["labels"].get("pipeline")) for a in alerts]

    # 2 of the 11 noop items failed: above the 10 % threshold, pending for its 5 minutes.
    wait_for(lambda: bool(active()), 15, "the rules to evaluate the failures")
    assert active() == [("ConveyorFailureRatioHigh", "noop")]


def test_metrics_port_serves_the_same_registry_as_the_api(stack: Stack) -> None:
    url = f"http://127.0.0.1:{stack.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    assert 'conveyor_items_finished_total{pipeline="noop",status="failed"} 2.0' in text
    assert "conveyor_http_request_duration_seconds_count" in text
