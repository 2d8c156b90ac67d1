"""Prometheus metrics of the API process: item counts from the store, request latencies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.store.queries import counts_by_status


class ItemCountsCollector(Collector):
    """Items by pipeline and status, read from the store at scrape time."""

    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "conveyor_items",
            "Items in the store by pipeline and status",
            labels=["pipeline", "status"],
        )
        with self.sessions() as session:
            for pipeline, by_status in counts_by_status(session).items():
                for status, count in by_status.items():
                    family.add_metric([pipeline, status], count)
        yield family


class ApiMetrics:
    def __init__(self, sessions: Any) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ItemCountsCollector(sessions))
        self.request_seconds = Histogram(
            "conveyor_http_request_duration_seconds",
            "API request latency",
            ["route", "method", "status"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestTimingMiddleware:
    """Times every request by its route template (low cardinality), not its raw path."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.request_seconds.labels(
                template, scope["method"], str(status["code"])
            ).observe(time.perf_counter() - started)
