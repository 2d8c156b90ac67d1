"""The Prometheus metrics of one Conveyor process, in one registry.

Counters and histograms are counted where things happen (the controller, ingest, the API
middleware); gauges that describe shared state (the store, Ray, disks) are read by collectors
at scrape time. Labels stay low-cardinality: pipeline, step, status, source, route; never an
item id, a file name or a user. Serving metrics will use the ``conveyor_serving_`` prefix with
``endpoint`` and ``model_version`` labels (see docs/monitoring.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from conveyor.pipeline.spec import Pipeline

STEP_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
LOOP_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
FINAL_STATUSES = ("succeeded", "failed", "cancelled")


class ConveyorMetrics:
    """Implements the controller's ``EngineMetrics`` and the submitter's ``IngestMetrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._define_item_metrics()
        self._define_controller_metrics()
        self.http_request_seconds = Histogram(
            "conveyor_http_request_duration_seconds",
            "API request latency by route template, method and response status",
            ["route", "method", "status"],
            registry=self.registry,
        )

    def _define_item_metrics(self) -> None:
        self.items_accepted = Counter(
            "conveyor_items_accepted",
            "Items accepted (committed to the store), by pipeline and how they came in",
            ["pipeline", "source"],
            registry=self.registry,
        )
        self.input_bytes = Counter(
            "conveyor_input_bytes",
            "Bytes of file inputs accepted as new items (uploads, inbox, CLI)",
            ["pipeline", "source"],
            registry=self.registry,
        )
        self.items_finished = Counter(
            "conveyor_items_finished",
            "Items a controller brought to a final state, by pipeline and status",
            ["pipeline", "status"],
            registry=self.registry,
        )
        self.step_runs = Counter(
            "conveyor_step_runs_finished",
            "Finished step runs by pipeline, step and status",
            ["pipeline", "step", "status"],
            registry=self.registry,
        )
        self.step_retries = Counter(
            "conveyor_step_retries",
            "Failed step runs scheduled to run again",
            ["pipeline", "step"],
            registry=self.registry,
        )
        self.step_seconds = Histogram(
            "conveyor_step_duration_seconds",
            "Run time of a step on its worker (succeeded and failed runs)",
            ["pipeline", "step"],
            buckets=STEP_SECONDS_BUCKETS,
            registry=self.registry,
        )

    def _define_controller_metrics(self) -> None:
        self.loop_lag = Histogram(
            "conveyor_controller_loop_lag_seconds",
            "Work time of one controller loop iteration (outcomes, commit, submissions), "
            "excluding idle waits: how late the controller reacts to a finished task",
            buckets=LOOP_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.inflight_items = Gauge(
            "conveyor_controller_inflight_items",
            "Items this controller holds (claimed and not yet final)",
            registry=self.registry,
        )
        self.lease_renewals = Counter(
            "conveyor_lease_renewals",
            "Item leases this controller extended",
            registry=self.registry,
        )
        self.leases_lost_total = Counter(
            "conveyor_leases_lost",
            "Items this controller dropped because another controller took their lease",
            registry=self.registry,
        )
        self.lease_takeovers = Counter(
            "conveyor_lease_takeovers",
            "Items this controller claimed after another controller's lease on them expired",
            registry=self.registry,
        )

    def initialise(self, pipelines: Iterable[Pipeline]) -> None:
        """Create every pipeline's series at zero, so rates and ratios exist before events."""
        for pipeline in pipelines:
            for status in FINAL_STATUSES:
                self.items_finished.labels(pipeline.name, status)
            for step in pipeline.steps:
                self.step_retries.labels(pipeline.name, step)
                self.step_seconds.labels(pipeline.name, step)
                for status in FINAL_STATUSES:
                    self.step_runs.labels(pipeline.name, step, status)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # -- ingest ------------------------------------------------------------------------------

    def item_accepted(
        self, pipeline: str, source: str, input_bytes: int | None, count: int = 1
    ) -> None:
        """``count`` items accepted, with ``input_bytes`` of input between them."""
        self.items_accepted.labels(pipeline, source).inc(count)
        if input_bytes:
            self.input_bytes.labels(pipeline, source).inc(input_bytes)

    # -- controller --------------------------------------------------------------------------

    def item_finished(self, pipeline: str, status: str) -> None:
        self.items_finished.labels(pipeline, status).inc()

    def step_finished(self, pipeline: str, step: str, status: str, seconds: float | None) -> None:
        self.step_runs.labels(pipeline, step, status).inc()
        if seconds is not None:
            self.step_seconds.labels(pipeline, step).observe(seconds)

    def step_retried(self, pipeline: str, step: str) -> None:
        self.step_retries.labels(pipeline, step).inc()

    def loop_finished(self, lag_seconds: float, inflight_items: int) -> None:
        self.loop_lag.observe(lag_seconds)
        self.inflight_items.set(inflight_items)

    def leases_renewed(self, count: int) -> None:
        if count:
            self.lease_renewals.inc(count)

    def leases_lost(self, count: int) -> None:
        if count:
            self.leases_lost_total.inc(count)

    def leases_taken_over(self, count: int) -> None:
        if count:
            self.lease_takeovers.inc(count)
