"""Alert delivery end to end, with Debian's Prometheus and Alertmanager and a real Conveyor.

A slow heart model version (every answer takes 0.5 s) is promoted; serving p99 passes 400 ms;
Prometheus fires ConveyorServingLatencyP99High; Alertmanager, with the shipped configuration
rendered by deploy/alertmanager/render.py as the deployments render it, delivers it to a
Slack-compatible webhook sink run by the test and to Conveyor's own receiver
(POST /api/v1/alerts/webhook with an operator token) within its group wait; after the rollback,
the resolution arrives at both. The shipped rule and intervals are shortened for the test
(rule ``for`` 2 s over a 10 s window instead of 5 m over 5 m; group wait 1 s, group interval
2 s), nothing else. A second test checks the inhibition: a node that is down silences the
alerts of its workers. A third runs every query of the Grafana serving dashboard against the
same Prometheus after the traffic and requires data.
"""

from __future__ import annotations

import copy
import json
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from fastapi import FastAPI

from conveyor.api.app import create_app
from conveyor.api.routes.endpoints import serving_of
from conveyor.auth.service import create_token
from conveyor.installation import Installation
from conveyor.models.registry import ModelRegistry
from conveyor.settings import load_settings
from support.alerting import Alertmanager, WebhookSink, render_alertmanager
from support.dashboards import DASHBOARD_DIR, as_promql, expressions
from support.monitoring import Prometheus, free_port, get_json, require_binary, wait_for

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # the serving tests' models
from serving_helpers import register_heart, register_misbehaving

pytestmark = pytest.mark.slow
DEPLOY = Path(__file__).parents[2] / "deploy"
LATENCY_ALERT = "ConveyorServingLatencyP99High"
GROUP_WAIT_SECONDS = 1
DELIVERY_SECONDS = 15  # group wait + one Prometheus send + a margin for a loaded machine
HEART_RECORD = {
    "age": 61.0, "sex": 1.0, "cp": 4.0, "trestbps": 140.0, "chol": 260.0, "fbs": 0.0,
    "restecg": 2.0, "thalach": 120.0, "exang": 1.0, "oldpeak": 2.5, "slope": 2.0,
    "ca": 2.0, "thal": 7.0,
}  # fmt: skip


@dataclass
class Stack:
    app: FastAPI
    api: str
    admin: str
    sink: WebhookSink
    prometheus: Prometheus
    alertmanager: Alertmanager
    slow_version: int


def _short_routes(route: dict[str, Any]) -> None:
    for key in ("group_wait", "group_interval"):
        if key in route or "routes" in route or "receiver" in route:
            route[key] = f"{GROUP_WAIT_SECONDS if key == 'group_wait' else 2}s"
    for child in route.get("routes", []):
        _short_routes(child)


def alertmanager_config(folder: Path, api: str, token: str, sink: str) -> dict[str, Any]:
    """The shipped configuration as render.py writes it for a deployment: Conveyor's receiver
    at this test's API with its operator token, Slack and the generic webhook at the sink."""
    settings = {
        "CONVEYOR_ALERTS_TOKEN": token,
        "ALERTMANAGER_CONVEYOR_URL": api,
        "ALERTMANAGER_LINK_URL": "http://127.0.0.1:8321",
        "ALERTMANAGER_SLACK_WEBHOOK_URL": f"{sink}/slack",
        "ALERTMANAGER_WEBHOOK_URL": f"{sink}/webhook",
    }  # no SMTP setting: email is off (tests/monitoring/test_alert_email.py mails)
    config = yaml.safe_load(render_alertmanager(folder, settings).read_text())
    _short_routes(config["route"])
    return config


def prometheus_config(folder: Path, api_port: int, alertmanager_port: int) -> dict[str, Any]:
    """Scrapes Conveyor every second; the shipped latency rule over 10 s instead of 5 min."""
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    [rule] = [r for g in groups for r in g["rules"] if r.get("alert") == LATENCY_ALERT]
    rule = copy.deepcopy(rule) | {"for": "2s", "expr": rule["expr"].replace("[5m]", "[10s]")}
    rules = {"groups": [{"name": "conveyor-serving", "rules": [rule]}]}
    (folder / "alerts.yml").write_text(yaml.safe_dump(rules))
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            {"job_name": "conveyor", "static_configs": [{"targets": [f"127.0.0.1:{api_port}"]}]}
        ],
    }


def _request(url: str, token: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=30) as answer:
        return json.loads(answer.read())


def _serve(app: FastAPI, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "uvicorn to start")
    return server, thread


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    folder = tmp_path_factory.mktemp("alerting")
    home = folder / "home"
    tracking = ModelRegistry.for_home(home, None)
    register_heart(tracking, folder / "work", seed=1)  # v1, the champion
    slow = register_misbehaving(tracking, "sleep", seconds=0.5)
    installation = Installation(load_settings(home, database_url=f"sqlite:///{folder / 'c.db'}"))
    with installation.sessions.begin() as session:
        admin = create_token(session, "tester", "admin")
        operator = create_token(session, "alertmanager", "operator")
    port, sink = free_port(), WebhookSink()
    app = create_app(installation, auth_required=True)
    server, thread = _serve(app, port)
    api = f"http://127.0.0.1:{port}"
    alertmanager = prometheus = None
    try:
        config = alertmanager_config(folder, api, operator, sink.url)
        alertmanager = Alertmanager(config, folder)
        prometheus = Prometheus(prometheus_config(folder, port, alertmanager.port), folder)
        yield Stack(app, api, admin, sink, prometheus, alertmanager, slow)
    finally:
        for process in (prometheus, alertmanager):
            if process is not None:
                print(process.stop()[-3000:])
        sink.stop()
        server.should_exit = True
        thread.join(15)
        installation.close()


class Traffic:
    """Predictions from two threads until stopped (each waits for its answer)."""

    def __init__(self, stack: Stack) -> None:
        self.stop_event = threading.Event()
        self.versions: list[int] = []
        url = f"{stack.api}/api/v1/endpoints/heart/predict"

        def send() -> None:
            while not self.stop_event.is_set():
                self.versions.append(_request(url, stack.admin, HEART_RECORD)["version"])
                time.sleep(0.05)  # a steady load, not a CPU-bound loop

        self.threads = [threading.Thread(target=send, daemon=True) for _ in range(2)]
        for sender in self.threads:
            sender.start()

    def stop(self) -> None:
        self.stop_event.set()
        for sender in self.threads:
            sender.join(10)


def _latency_notices(stack: Stack, path: str) -> list[tuple[float, str]]:
    """(arrival, status) of the sink's notifications about the latency alert."""
    found = []
    for at, body in stack.sink.bodies(path):
        text = json.dumps(body)
        if LATENCY_ALERT in text:
            status = body.get("status") or ("resolved" if "RESOLVED" in text else "firing")
            found.append((at, status))
    return found


def _resolved_at_sink(stack: Stack) -> bool:
    return "resolved" in {status for _, status in _latency_notices(stack, "/slack")}


def _conveyor_status(stack: Stack) -> list[str]:
    alerts = _request(f"{stack.api}/api/v1/alerts", stack.admin)["alerts"]
    return [a["status"] for a in alerts if a["name"] == LATENCY_ALERT]


def _firing_in_prometheus(stack: Stack) -> bool:
    query = f'ALERTS{{alertname="{LATENCY_ALERT}", alertstate="firing"}}'
    return bool(stack.prometheus.query(query))


def test_a_slow_version_alerts_and_the_rollback_resolves(stack: Stack) -> None:
    models = f"{stack.api}/api/v1/models/heart"
    _request(f"{models}/promote", stack.admin, {"version": 1, "reason": "baseline"})
    _request(f"{models}/promote", stack.admin, {"version": stack.slow_version, "reason": "test"})
    traffic = Traffic(stack)
    try:
        wait_for(lambda: stack.slow_version in traffic.versions[-4:], 30, "the slow version")
        wait_for(lambda: _firing_in_prometheus(stack), 60, "Prometheus to fire the alert")
        fired_at = time.monotonic()
        wait_for(lambda: _latency_notices(stack, "/slack"), DELIVERY_SECONDS, "the Slack sink")
        wait_for(lambda: _conveyor_status(stack) == ["firing"], DELIVERY_SECONDS, "Conveyor")
        delivered_in = time.monotonic() - fired_at
        _request(f"{models}/rollback", stack.admin, {"reason": "too slow"})
        wait_for(lambda: traffic.versions[-4:] == [1] * 4, 30, "the rollback to serve")
        rolled_back_at = time.monotonic()
        wait_for(lambda: not _firing_in_prometheus(stack), 60, "Prometheus to resolve")
        wait_for(lambda: _resolved_at_sink(stack), DELIVERY_SECONDS, "the resolution at the sink")
        wait_for(lambda: _conveyor_status(stack) == ["resolved"], DELIVERY_SECONDS, "Conveyor")
        resolved_in = time.monotonic() - rolled_back_at
    finally:
        traffic.stop()
    print(
        f"delivered {delivered_in:.1f} s after firing; resolved {resolved_in:.1f} s after rollback"
    )
    [(_, slack)] = stack.sink.bodies("/slack")[:1]
    [attachment] = slack["attachments"]
    assert attachment["title_link"] == "http://127.0.0.1:8321/endpoints/heart"
    assert attachment["title"].startswith(f"[FIRING:1] {LATENCY_ALERT} endpoint heart")
    assert slack["channel"] == "#ml-serving"
    history = _request(f"{stack.api}/api/v1/alerts", stack.admin)["history"]
    mine = [event["status"] for event in history if event["name"] == LATENCY_ALERT]
    assert mine == ["resolved", "firing"]
    alerts = _request(f"{stack.api}/api/v1/alerts", stack.admin)["alerts"]
    [alert] = [a for a in alerts if a["name"] == LATENCY_ALERT]
    assert alert["labels"]["model_version"] == str(stack.slow_version)
    assert alert["receiver"] == "conveyor" and alert["link"] == "/endpoints/heart"


def test_a_node_down_silences_its_workers_alerts(stack: Stack) -> None:
    def alert(name: str, node: str, component: str) -> dict[str, Any]:
        labels = {"alertname": name, "node": node, "severity": "critical"}
        labels |= {"component": component, "instance": f"{node}:9100"}
        return {"labels": labels, "annotations": {"summary": f"{name} on {node}"}}

    stack.alertmanager.post_alerts(
        [
            alert("ConveyorNodeDown", "worker-1", "node"),
            alert("ConveyorDiskNearlyFull", "worker-1", "node"),
            alert("ConveyorDiskNearlyFull", "worker-2", "node"),
        ]
    )

    def delivered() -> set[tuple[str, str]]:
        found = set()
        for _, body in stack.sink.bodies("/webhook"):
            found |= {(a["labels"]["alertname"], a["labels"]["node"]) for a in body["alerts"]}
        return found

    expected = {("ConveyorNodeDown", "worker-1"), ("ConveyorDiskNearlyFull", "worker-2")}
    wait_for(lambda: delivered() >= expected, DELIVERY_SECONDS, "the generic webhook")
    time.sleep(3 * GROUP_WAIT_SECONDS + 2)  # time enough for the silenced one to arrive
    assert delivered() == expected
    names = {
        (a["name"], a["labels"]["node"])
        for a in _request(f"{stack.api}/api/v1/alerts", stack.admin)["alerts"]
        if "node" in a["labels"]
    }
    assert names == expected
    inhibited = get_json(f"{stack.alertmanager.url}/api/v2/alerts?inhibited=true&active=false")
    assert [a["labels"]["node"] for a in inhibited] == ["worker-1"]


def test_every_serving_dashboard_expression_returns_data(stack: Stack) -> None:
    predict = f"{stack.api}/api/v1/endpoints/heart/predict"
    answers = [_request(predict, stack.admin, HEART_RECORD) for _ in range(20)]
    for answer in answers[:10]:
        prediction = answer["predictions"][0]["id"]
        feedback = f"{stack.api}/api/v1/predictions/{prediction}/feedback"
        _request(feedback, stack.admin, {"label": 1})
    serving_of(stack.app).export_quality()  # the quality loop's work, without its minute
    prometheus = stack.prometheus
    seen = "count(conveyor_serving_online_quality) > 0 and "
    seen += "count(increase(conveyor_serving_requests_total[1m]) > 0)"
    wait_for(lambda: bool(prometheus.query(seen)), 30, "Prometheus to scrape the traffic")
    empty = []
    for dashboard, title, expression in expressions([DASHBOARD_DIR / "conveyor-serving.json"]):
        values = [float(sample["value"][1]) for sample in prometheus.query(as_promql(expression))]
        if not any(value == value for value in values):  # no sample, or only NaN
            empty.append(f"{dashboard} / {title}: {expression} -> {values}")
    assert not empty, "expressions without data:\n" + "\n".join(empty)
    variables = json.loads((DASHBOARD_DIR / "conveyor-serving.json").read_text())["templating"]
    for variable in variables["list"]:
        if variable["type"] == "query":
            selector, label = variable["definition"][len("label_values(") : -1].rsplit(", ", 1)
            url = f"{prometheus.url}/api/v1/label/{label}/values?match[]={as_promql(selector)}"
            values = get_json(url.replace(" ", "%20").replace('"', "%22"))["data"]
            assert "heart" in values or "1" in values, (variable["name"], values)
