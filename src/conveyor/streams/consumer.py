"""One source's consumer loop: fetch a batch, commit what it becomes, then acknowledge it.

The ack comes only after the commit, so a crash in between redelivers the batch and the store's
message identities turn the redelivery into a no-op: at-least-once from the broker becomes
exactly-once into the store. Fetching pauses while the source's queued items reach its bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from conveyor.pipeline.spec import Pipeline
from conveyor.streams.brokers.base import BrokerConsumer, Message
from conveyor.streams.intake import BatchOutcome
from conveyor.streams.messages import RecordCheck, schema_check
from conveyor.streams.metrics import StreamMetrics
from conveyor.streams.sources import SourceConfig, queued_items, record_lag


class Intake(Protocol):
    """What a batch becomes: items (:class:`~conveyor.streams.intake.MessageIntake`) or a
    model's labelled rows (:class:`~conveyor.streams.row_intake.RowIntake`)."""

    def take(
        self,
        source: str,
        pipeline: Pipeline,
        messages: Sequence[Message],
        check: RecordCheck | None = None,
    ) -> BatchOutcome: ...


@dataclass
class ConsumerStatus:
    """Live counts of one source in this process, for `conveyor streams run`."""

    state: str = "starting"  # running, paused, error
    items: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    lag: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class ConsumerTuning:
    batch_size: int = 500
    fetch_timeout_seconds: float = 1.0
    pause_seconds: float = 0.5  # between looks at the queue while paused
    lag_interval_seconds: float = 5.0
    recount_seconds: float = 2.0  # the queued count is re-read at least this often


class SourceConsumer:
    def __init__(
        self,
        config: SourceConfig,
        pipeline: Pipeline,
        broker: BrokerConsumer,
        intake: Intake,
        sessions: sessionmaker[Session],
        metrics: StreamMetrics | None = None,
        tuning: ConsumerTuning | None = None,
        status: ConsumerStatus | None = None,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.broker = broker
        self.intake = intake
        self.sessions = sessions
        self.metrics = metrics
        self.tuning = tuning or ConsumerTuning()
        self.status = status or ConsumerStatus()
        self.check = schema_check(config.record_schema) if config.record_schema else None
        self._queued = 0  # estimate: last count plus what this consumer added since
        self._counted_at = float("-inf")
        self._lag_read_at = float("-inf")

    def run(self, stop: threading.Event) -> None:
        self.status.state = "running"
        while not stop.is_set():
            if self.poll_once() == 0 and self.status.state == "paused":
                stop.wait(self.tuning.pause_seconds)

    def poll_once(self) -> int:
        """One round; returns how many messages it took (0: none waiting, or paused)."""
        self._report_lag_when_due()
        room = self._room()
        self._set_paused(room <= 0)
        if room <= 0:
            return 0
        messages = self.broker.fetch(min(self.tuning.batch_size, room), self._fetch_timeout())
        if not messages:
            return 0
        started = time.monotonic()
        outcome = self.intake.take(self.config.name, self.pipeline, messages, self.check)
        self.broker.ack(messages)
        self._queued += outcome.items
        self._count(outcome, time.monotonic() - started)
        return len(messages)

    def _fetch_timeout(self) -> float:
        # Never block past the next lag report, so an idle source still reports its lag.
        return min(self.tuning.fetch_timeout_seconds, self.tuning.lag_interval_seconds)

    def _room(self) -> int:
        """How many more items this source may queue before it must wait."""
        now = time.monotonic()
        stale = now - self._counted_at > self.tuning.recount_seconds
        if stale or self._queued + self.tuning.batch_size > self.config.max_queued:
            with self.sessions() as session:
                self._queued = queued_items(session, self.config.name, self.config.pipeline)
            self._counted_at = now
        return self.config.max_queued - self._queued

    def _set_paused(self, paused: bool) -> None:
        was_paused = self.status.state == "paused"
        if paused != was_paused:
            self.status.state = "paused" if paused else "running"
            if self.metrics:
                self.metrics.pause_changed(self.config.name, paused)

    def _report_lag_when_due(self) -> None:
        now = time.monotonic()
        if now - self._lag_read_at < self.tuning.lag_interval_seconds:
            return
        self._lag_read_at = now
        lag = self.broker.lag()
        self.status.lag = lag
        if self.metrics:
            self.metrics.lag_read(self.config.name, lag)
        with self.sessions.begin() as session:
            record_lag(session, self.config.name, lag)

    def _count(self, outcome: BatchOutcome, seconds: float) -> None:
        self.status.items += outcome.items + outcome.rows
        self.status.duplicates += outcome.duplicates
        self.status.dead_letters += sum(outcome.dead_letters.values())
        if self.metrics:
            self.metrics.batch_taken(self.config.name, outcome, seconds)
