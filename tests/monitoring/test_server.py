"""/metrics on its own port, as `conveyor up --no-api --metrics-port` serves it."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from conveyor.monitoring.server import serve_metrics
from support.up import free_port


def test_metrics_server_serves_the_shared_registry_and_stops(installation) -> None:
    installation.submitter.submit_records("noop", [{"n": 1}])
    port = free_port()
    stop = serve_metrics(installation.metrics.registry, "127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        stop()
    assert 'conveyor_items_accepted_total{pipeline="noop",source="api"} 1.0' in text
    assert 'conveyor_items{pipeline="noop",status="queued"} 1.0' in text
    with pytest.raises(urllib.error.URLError):  # stopped: nothing listens any more
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
