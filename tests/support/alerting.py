"""Helpers of the alert-delivery tests: Debian's Alertmanager on a free loopback port, and a
webhook sink that keeps what it receives (the stand-in for Slack, a pager, a chat relay)."""

from __future__ import annotations

import json
import subprocess
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
