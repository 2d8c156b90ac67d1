"""The outbox relay: a thread per sink publishes its outbox rows in order and deletes them once
the broker confirmed each. One relay at a time holds a sink (a lease in ``stream_sinks``), so
several `conveyor up` processes do not publish the same rows; a relay that dies leaves the lease
to expire and the next one publishes what it had not deleted (again, if the broker had already
confirmed it: consumers dedupe by the item id each message carries)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from conveyor.store.models import utcnow
from conveyor.store.outage_log import OutageLog, unreachable_cause
from conveyor.streams.brokers import open_producer, redact
from conveyor.streams.brokers.base import BrokerProducer, Outgoing
from conveyor.streams.metrics import SinkMetrics
from conveyor.streams.outbox import (
    ITEM_HEADER,
    OUTBOX_HEADER,
    claim_sink,
    confirm_published,
    next_rows,
    record_error,
    release_sink,
)
from conveyor.streams.runner import (
    FIRST_RETRY_SECONDS,
    MAX_RETRY_SECONDS,
    REFRESH_SECONDS,
    default_consumer_name,
)
from conveyor.streams.sinks import key_header, list_sinks, outbox_depth

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from conveyor.installation import Installation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayTuning:
    batch_size: int = 500  # rows published per round trip: after a crash, at most this many repeat
    lease_seconds: float = 30.0  # how long a dead relay keeps a sink from the others
    idle_seconds: float = 0.5  # between looks at an empty outbox


@dataclass(frozen=True)
class _Sink:
    name: str
    url: str
    options: Mapping[str, str]
    key_header: str = ITEM_HEADER


class OutboxRelay:
    def __init__(
        self,
        installation: Installation,
        names: Sequence[str] = (),
        tuning: RelayTuning | None = None,
        owner: str | None = None,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.installation = installation
        self.sessions = installation.sessions
        self.names = set(names)  # empty: every sink
        self.tuning = tuning or RelayTuning()
        self.owner = owner or default_consumer_name()
        self.refresh_seconds = refresh_seconds
        self.outage = OutageLog("stream sinks relay", refresh_seconds, logger)
        self.metrics = SinkMetrics(installation.metrics.registry)
        self.running: dict[str, tuple[threading.Thread, threading.Event]] = {}

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="conveyor-sinks")
        thread.daemon = True
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        """Keep a thread per sink until ``stop``; each finishes its batch and lets go."""
        while not stop.is_set():
            with self.outage.attempt("could not read the stream sinks; will try again"):
                self.refresh()
            stop.wait(self.refresh_seconds)
        for _, sink_stop in self.running.values():
            sink_stop.set()
        for thread, _ in self.running.values():
            thread.join(timeout=60)

    def refresh(self) -> None:
        with self.installation.read_sessions() as session:
            wanted = {
                sink.name: _Sink(
                    sink.name, sink.url, dict(sink.options or {}), key_header(sink.statuses or ())
                )
                for sink in list_sinks(session)
                if not self.names or sink.name in self.names
            }
        for name in set(self.running) - set(wanted):
            logger.info("stream sink %s removed: stopping its relay", name)
            self.running.pop(name)[1].set()
        for name, sink in wanted.items():
            if name not in self.running or not self.running[name][0].is_alive():
                sink_stop = threading.Event()
                thread = threading.Thread(
                    target=self._relay, args=(sink, sink_stop), name=f"conveyor-sink-{name}"
                )
                thread.daemon = True
                self.running[name] = (thread, sink_stop)
                self.metrics.initialise(name)
                thread.start()

    def _relay(self, sink: _Sink, stop: threading.Event) -> None:
        """A sink's thread: publish until ``stop``; after a failure, again with a back-off."""
        delay = FIRST_RETRY_SECONDS
        while not stop.is_set():
            try:
                self._relay_once(sink, stop)
                return
            except Exception as error:
                if not self.outage.unreachable(error):  # logged once for every sink
                    self._failed(sink, f"{type(error).__name__}: {error}", delay)
                stop.wait(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)

    def _failed(self, sink: _Sink, message: str, delay: float) -> None:
        logger.warning(
            "stream sink %s (%s) failed, retrying in %.0f s: %s",
            sink.name,
            redact(sink.url),
            delay,
            message,
        )
        self.metrics.errors.labels(sink.name).inc()
        self._best_effort(lambda session: self._error_and_depth(session, sink.name, message))

    def _error_and_depth(self, session: Session, sink: str, message: str) -> None:
        """While the broker is out the outbox grows: the depth is read on each failure too."""
        record_error(session, sink, message)
        self.metrics.outbox_depth.labels(sink).set(outbox_depth(session, sink))

    def _relay_once(self, sink: _Sink, stop: threading.Event) -> None:
        producer: BrokerProducer | None = None
        renew_at = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= renew_at:
                    claimed = self._claim(sink.name)
                    self.outage.succeeded()  # the store answered
                    if not claimed:
                        # Only the relay holding the sink reports its depth.
                        self.metrics.forget_depth(sink.name)
                        stop.wait(self.tuning.lease_seconds / 3)
                        continue
                    renew_at = time.monotonic() + self.tuning.lease_seconds / 3
                if producer is None:
                    producer = open_producer(sink.url, sink.options)
                if self.publish_batch(sink.name, producer, sink.key_header) == 0:
                    stop.wait(self.tuning.idle_seconds)
        finally:
            if producer is not None:
                producer.close()
            self._best_effort(lambda session: release_sink(session, sink.name, self.owner))

    def publish_batch(
        self, sink: str, producer: BrokerProducer, key_header: str = ITEM_HEADER
    ) -> int:
        """Publish the sink's next rows as one batch, then delete them; returns how many. A
        failure keeps them all, so a batch the broker took in part is published again whole."""
        with self.sessions() as session:
            rows = [
                (row.id, row.item_id, row.payload)
                for row in next_rows(session, sink, self.tuning.batch_size)
            ]
            self.metrics.outbox_depth.labels(sink).set(
                len(rows) if len(rows) < self.tuning.batch_size else outbox_depth(session, sink)
            )
        if rows:
            producer.publish_batch([_outgoing(*row, key_header) for row in rows])
            with self.sessions.begin() as session:
                confirm_published(session, sink, [row_id for row_id, _, _ in rows], utcnow())
            self.metrics.published.labels(sink).inc(len(rows))
        return len(rows)

    def _claim(self, sink: str) -> bool:
        lease = timedelta(seconds=self.tuning.lease_seconds)
        with self.sessions.begin() as session:
            return claim_sink(session, sink, self.owner, utcnow(), lease)

    def _best_effort(self, write: Callable[[Session], None]) -> None:
        try:
            with self.sessions.begin() as session:
                write(session)
        except Exception as error:
            if unreachable_cause(error) is None:  # an outage is logged once, by self.outage
                logger.warning("could not write the relay's state to the store", exc_info=True)


def _outgoing(row_id: int, key: str, payload: bytes, key_header: str) -> Outgoing:
    """The key (item, event or prediction id) as key, header and message id, for consumers to
    dedupe by: a batch published again after a lost confirmation repeats the same ids."""
    headers = {key_header: key, OUTBOX_HEADER: str(row_id)}
    return Outgoing(payload, key.encode(), headers, message_id=key)
