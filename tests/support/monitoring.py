"""Helpers of the monitoring tests: metric values, the Prometheus binaries, a live Prometheus."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from support.up import free_port


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample's value, 0 when the series does not exist (as PromQL's ``or vector(0)``)."""
    return registry.get_sample_value(name, labels) or 0.0


def require_binary(name: str) -> str:
    """The path of a Debian Prometheus binary; skipped outside CI when missing, failed in CI."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed; scripts/test-services.sh installs it")
    pytest.skip(f"{name} not installed (apt-get install prometheus)")


def get_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:  # not listening yet
            pass
        time.sleep(0.25)
    raise TimeoutError(f"waited {seconds}s for {what}")


def stop_process(process: subprocess.Popen) -> str:  # type: ignore[type-arg]
    """SIGTERM, then SIGKILL after 15 s; returns what the process printed."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    output = process.communicate()[0] if process.stdout else b""
    return (output or b"").decode(errors="replace")


class Prometheus:
    """A real Prometheus on a free loopback port with its own storage, scraping every second."""

    def __init__(self, config: dict[str, Any], folder: Path) -> None:
        binary = require_binary("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_file = folder / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: self._ready(), 60, "Prometheus to start")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {stop_process(self.process)}")
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
            return response.status == 200

    def query(self, expression: str) -> list[dict[str, Any]]:
        """Result of an instant query; raises when Prometheus rejects the expression."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
        try:
            body = get_json(url)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{expression!r}: {error.read().decode()}") from error
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expression: str) -> float:
        result = self.query(expression)
        return float(result[0]["value"][1]) if result else math.nan

    def stop(self) -> str:
        return stop_process(self.process)
