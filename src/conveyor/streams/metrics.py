"""Prometheus metrics of the stream consumers in this process (docs/streams.md lists them).
Labels: the source name (a handful per installation), an outcome, a dead letter's reason code."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from conveyor.streams.intake import BatchOutcome

BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            "conveyor_stream_messages",
            "Messages taken from a stream source, by outcome: item (a new item), row (a "
            "training row), duplicate (a redelivery, no change), dead_letter",
            ["source", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "conveyor_stream_dead_letters",
            "Messages kept as dead letters, by reason code (bad_json, schema, ...)",
            ["source", "reason"],
            registry=registry,
        )
        self.lag = Gauge(
            "conveyor_stream_lag_messages",
            "Messages published to the source and not yet acknowledged by its consumer group",
            ["source"],
            registry=registry,
        )
        self.paused = Gauge(
            "conveyor_stream_paused",
            "1 while the source's consumer waits because its queued items reached max_queued",
            ["source"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "conveyor_stream_batch_duration_seconds",
            "Time from a batch fetched to its items committed and the broker acknowledged",
            ["source"],
            buckets=BATCH_SECONDS_BUCKETS,
            registry=registry,
        )

    def initialise(self, source: str) -> None:
        for outcome in ("item", "row", "duplicate", "dead_letter"):
            self.messages.labels(source, outcome)
        self.paused.labels(source).set(0)

    def batch_taken(self, source: str, outcome: BatchOutcome, seconds: float) -> None:
        self.messages.labels(source, "item").inc(outcome.items)
        self.messages.labels(source, "row").inc(outcome.rows)
        self.messages.labels(source, "duplicate").inc(outcome.duplicates)
        self.messages.labels(source, "dead_letter").inc(sum(outcome.dead_letters.values()))
        for reason, count in outcome.dead_letters.items():
            self.dead_letters.labels(source, reason).inc(count)
        self.batch_seconds.labels(source).observe(seconds)

    def lag_read(self, source: str, lag: int | None) -> None:
        if lag is not None:
            self.lag.labels(source).set(lag)

    def pause_changed(self, source: str, paused: bool) -> None:
        self.paused.labels(source).set(1 if paused else 0)


class SinkMetrics:
    """The outbox relay's metrics: confirmed messages, failed attempts, messages waiting."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "conveyor_stream_sink_published",
            "Messages a sink published and the broker confirmed (a relay crash before its "
            "delete publishes some again)",
            ["sink"],
            registry=registry,
        )
        self.errors = Counter(
            "conveyor_stream_sink_errors",
            "Relay attempts that failed (broker unreachable, a publish refused); retried",
            ["sink"],
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "conveyor_stream_outbox_depth",
            "Messages in a sink's outbox waiting to be published (read by the relay holding the "
            "sink, each round and after each failure)",
            ["sink"],
            registry=registry,
        )

    def initialise(self, sink: str) -> None:
        self.published.labels(sink)
        self.errors.labels(sink)

    def forget_depth(self, sink: str) -> None:
        with contextlib.suppress(KeyError):  # never set in this process
            self.outbox_depth.remove(sink)
