"""Helpers of the alert-delivery tests: Debian's Alertmanager on a free loopback port, and a
webhook sink that keeps what it receives (the stand-in for Slack, a pager, a chat relay)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from support.monitoring import free_port, require_binary, stop_process, wait_for


class WebhookSink:
    """An HTTP server on loopback keeping every POSTed JSON body with its path and arrival."""

    def __init__(self) -> None:
        self.received: list[tuple[str, float, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink._lock:
                    sink.received.append((self.path, time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path: str) -> list[tuple[float, Any]]:
        with self._lock:
            return [(at, body) for where, at, body in self.received if where == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Alertmanager:
    """A real Alertmanager (no cluster peers) with ``config``, its API on a free port."""

    def __init__(self, config: dict[str, Any], folder: Path) -> None:
        binary = require_binary("prometheus-alertmanager")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_file = folder / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.path={folder / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, 60, "Alertmanager to start")

    def _ready(self) -> bool:
        import urllib.request

        if self.process.poll() is not None:
            raise RuntimeError(f"alertmanager exited: {stop_process(self.process)}")
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
            return response.status == 200

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts as Prometheus does (API v2)."""
        import urllib.request

        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            json.dumps(alerts).encode(),
            {"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> str:
        return stop_process(self.process)


RENDER_SCRIPT = Path(__file__).parents[2] / "deploy" / "alertmanager" / "render.py"


def render_alertmanager(out: Path, settings: dict[str, str], *arguments: str) -> Path:
    """deploy/alertmanager/render.py into ``out`` with ``settings`` as its environment only."""
    environment = {"PATH": "/usr/bin:/bin", **settings}
    command = [sys.executable, str(RENDER_SCRIPT), str(out), *arguments]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return out / "alertmanager.yml"


def amtool(folder: Path, *arguments: str) -> str:
    """amtool in ``folder`` (relative template and secret paths resolve there); must succeed."""
    done = subprocess.run(
        [require_binary("amtool"), *arguments],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def routes(folder: Path, **labels: str) -> str:
    """The receivers `amtool config routes test` picks for ``labels`` (comma-separated)."""
    pairs = [f"{name}={value}" for name, value in labels.items()]
    return amtool(
        folder, "config", "routes", "test", "--config.file=alertmanager.yml", *pairs
    ).strip()


# The routing tree docs/monitoring.md promises: labels -> receivers, in amtool's order.
EXPECTED_ROUTES: list[tuple[dict[str, str], str]] = [
    ({"severity": "critical", "component": "serving"}, "conveyor,serving-oncall"),
    ({"severity": "critical", "component": "node"}, "conveyor,oncall"),
    ({"severity": "critical", "component": "workers"}, "conveyor,oncall"),
    ({"severity": "critical", "component": "conveyor"}, "conveyor,oncall"),
    ({"severity": "warning", "component": "serving"}, "conveyor,serving-team"),
    ({"severity": "warning", "component": "pipeline"}, "conveyor,pipelines-team"),
    ({"severity": "warning", "component": "workers"}, "conveyor,pipelines-team"),
    ({"severity": "warning", "component": "node"}, "conveyor,ops-email"),
    ({"severity": "info", "component": "serving"}, "conveyor"),
    ({"alertname": "Unlabelled"}, "conveyor"),
]


def assert_routes(folder: Path) -> None:
    """Every case of EXPECTED_ROUTES holds for ``folder``/alertmanager.yml."""
    found = [(labels, routes(folder, **labels)) for labels, _ in EXPECTED_ROUTES]
    assert found == EXPECTED_ROUTES


# Settings of a site with every channel: what the targets' tests render with.
SITE_SETTINGS = {
    "ALERTMANAGER_SLACK_WEBHOOK_URL": "https://chat.example.net/hooks/abc",
    "ALERTMANAGER_WEBHOOK_URL": "https://pager.example.net/conveyor",
    "ALERTMANAGER_SMTP_SMARTHOST": "smtp.example.net:587",
    "ALERTMANAGER_SMTP_FROM": "alerts@example.net",
    "ALERTMANAGER_SMTP_USERNAME": "alerts",
    "ALERTMANAGER_SMTP_PASSWORD": "smtp password 42",
    "ALERTMANAGER_ONCALL_EMAIL": "oncall@example.net",
    "ALERTMANAGER_OPS_EMAIL": "ops@example.net",
}


def channels(config_file: Path) -> dict[str, set[str]]:
    """Receiver name -> the kinds of notifier it has (slack, email, webhook)."""
    config = yaml.safe_load(config_file.read_text())
    return {
        receiver["name"]: {key.removesuffix("_configs") for key in receiver if key != "name"}
        for receiver in config["receivers"]
    }


def webhook_urls(config_file: Path) -> set[str]:
    config = yaml.safe_load(config_file.read_text())
    return {w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])}


def webhook_payload(status: str, ends_at: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
    """What Alertmanager 0.25 posts (webhook payload version 4), with one alert."""
    labels = {
        "alertname": "ConveyorServingLatencyP99High",
        "endpoint": "heart",
        "model_version": "3",
        "severity": "warning",
        "component": "serving",
    }
    return {
        "receiver": "conveyor",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "Serving p99 latency above 400 ms on heart"},
                "startsAt": "2026-11-28T10:00:00.123+00:00",
                "endsAt": ends_at,
                "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
                "fingerprint": "0a1b2c3d4e5f6a7b",
            }
        ],
        "groupLabels": {"alertname": "ConveyorServingLatencyP99High"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="ConveyorServingLatencyP99High"}',
        "truncatedAlerts": 0,
    }
