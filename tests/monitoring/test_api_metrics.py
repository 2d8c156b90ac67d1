"""API latency is labelled by route template with its router prefix, never by the raw path."""

from __future__ import annotations

from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from support.monitoring import sample


def test_requests_are_timed_by_route_template(installation) -> None:
    client = TestClient(create_app(installation, auth_required=False))
    for item_id in ("abcdef123456", "fedcba654321"):
        assert client.get(f"/api/v1/items/{item_id}").status_code == 404
    assert client.get("/no/such/page").status_code == 404
    registry = installation.metrics.registry
    name = "conveyor_http_request_duration_seconds_count"
    route = "/api/v1/items/{item_id}"
    assert sample(registry, name, route=route, method="GET", status="404") == 2
    assert sample(registry, name, route="unmatched", method="GET", status="404") == 1
    labels = [
        s.labels["route"]
        for metric in registry.collect()
        if metric.name == "conveyor_http_request_duration_seconds"
        for s in metric.samples
    ]
    assert not any("abcdef" in label for label in labels)
