"""Serving metrics (Prometheus), in the process's one registry (``conveyor.monitoring``).

Names and labels are the ones docs/monitoring.md reserved and deploy/prometheus/alerts.yml
uses: ``endpoint`` and ``model_version`` are bounded (deployed endpoints, live versions).
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.4, 0.5, 1.0, 2.5)
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, ServingMetrics] = (
    weakref.WeakKeyDictionary()
)


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["endpoint", "model_version"]
        self.latency = Histogram(
            "conveyor_serving_request_duration_seconds",
            "Prediction latency (parse, route, predict, respond) by endpoint and model version",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "conveyor_serving_requests",
            "Prediction requests by endpoint, model version and HTTP status",
            [*labels, "status"],
            registry=registry,
        )
        self.online_quality = Gauge(
            "conveyor_serving_online_quality",
            "Online quality from feedback (accuracy; click-through for recommendations)",
            labels,
            registry=registry,
        )
        self.reload_failures = Counter(
            "conveyor_serving_reload_failures",
            "Model versions that failed to load or verify and were not swapped in",
            labels,
            registry=registry,
        )
        self.reloads = Counter(
            "conveyor_serving_reloads",
            "Model versions swapped in (loaded and verified) by endpoint and version",
            labels,
            registry=registry,
        )
        self.live_version = Gauge(
            "conveyor_serving_live_version",
            "1 for each (endpoint, arm, model version) this process serves",
            ["endpoint", "arm", "model_version"],
            registry=registry,
        )
        self.log_dropped = Counter(
            "conveyor_serving_prediction_log_dropped",
            "Prediction log rows dropped (queue full or the store refused the batch)",
            ["endpoint"],
            registry=registry,
        )
        self.log_unjournaled = Counter(
            "conveyor_serving_prediction_log_unjournaled",
            "Prediction log rows the local journal refused (disk full): kept in memory only",
            ["endpoint"],
            registry=registry,
        )


def serving_metrics(registry: CollectorRegistry) -> ServingMetrics:
    """The serving metrics of ``registry``, defined once however many apps share it."""
    found = _BY_REGISTRY.get(registry)
    if found is None:
        found = _BY_REGISTRY[registry] = ServingMetrics(registry)
    return found
