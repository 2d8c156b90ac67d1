"""Running the consumers of the configured sources: a thread per source, restarted after a
broker or store failure, and the set of sources re-read so that sources added or removed while
`conveyor up` runs are picked up without a restart."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.store.outage_log import OutageLog
from conveyor.streams.brokers import open_consumer, redact
from conveyor.streams.consumer import ConsumerStatus, ConsumerTuning, SourceConsumer
from conveyor.streams.intake import MessageIntake
from conveyor.streams.metrics import StreamMetrics
from conveyor.streams.row_intake import RowIntake
from conveyor.streams.sources import SourceConfig, config_of, list_sources

if TYPE_CHECKING:
    from conveyor.installation import Installation

logger = logging.getLogger(__name__)
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
REFRESH_SECONDS = 10.0


def default_consumer_name() -> str:
    """Unique per process: a restarted process is a new consumer; the group reclaims what a
    dead one held (the broker's redelivery)."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class _Running:
    thread: threading.Thread
    stop: threading.Event
    status: ConsumerStatus


class StreamRunner:
    def __init__(
        self,
        installation: Installation,
        names: Sequence[str] = (),
        tuning: ConsumerTuning | None = None,
        consumer_name: str | None = None,
        refresh_seconds: float = REFRESH_SECONDS,
        metrics: StreamMetrics | None = None,
    ) -> None:
        self.installation = installation
        self.refresh_seconds = refresh_seconds
        self.outage = OutageLog("stream sources runner", refresh_seconds, logger)
        self.names = set(names)  # empty: every enabled source
        self.tuning = tuning or ConsumerTuning()
        self.consumer_name = consumer_name or default_consumer_name()
        # One runner per process counts into the process's registry; another needs its own.
        self.metrics = metrics or StreamMetrics(installation.metrics.registry)
        self.intake = MessageIntake(installation.sessions, installation.submitter)
        self.row_intake = RowIntake(installation.sessions)
        self.running: dict[str, _Running] = {}

    def statuses(self) -> dict[str, ConsumerStatus]:
        return {name: running.status for name, running in sorted(self.running.items())}

    def start(self, stop: threading.Event) -> threading.Thread:
        """Supervise in a background thread until ``stop`` is set (``conveyor up``)."""
        thread = threading.Thread(target=self.run, args=(stop,), name="conveyor-streams")
        thread.daemon = True
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        """Keep a consumer running per wanted source until ``stop``; then let each finish its
        batch (commit and ack) and return."""
        while not stop.is_set():
            with self.outage.attempt("could not read the stream sources; will try again"):
                self.refresh()
            stop.wait(self.refresh_seconds)
        for running in self.running.values():
            running.stop.set()
        for running in self.running.values():
            running.thread.join(timeout=60)

    def refresh(self) -> None:
        with self.installation.read_sessions() as session:
            wanted = {
                source.name: config_of(source)
                for source in list_sources(session, enabled_only=True)
                if not self.names or source.name in self.names
            }
        for name in set(self.running) - set(wanted):
            logger.info("stream source %s removed or disabled: stopping its consumer", name)
            self.running.pop(name).stop.set()
        for name, config in wanted.items():
            if name not in self.running or not self.running[name].thread.is_alive():
                self._launch(config)

    def _launch(self, config: SourceConfig) -> None:
        source_stop = threading.Event()
        status = ConsumerStatus()
        thread = threading.Thread(
            target=self._consume,
            args=(config, status, source_stop),
            name=f"conveyor-stream-{config.name}",
            daemon=True,
        )
        self.running[config.name] = _Running(thread, source_stop, status)
        self.metrics.initialise(config.name)
        thread.start()

    def _consume(self, config: SourceConfig, status: ConsumerStatus, stop: threading.Event) -> None:
        """A source's thread: its consumer, opened again after a failure (with a back-off)."""
        delay = FIRST_RETRY_SECONDS
        while not stop.is_set():
            try:
                self._consume_once(config, status, stop)
                return
            except Exception as error:
                status.state, status.error = "error", f"{type(error).__name__}: {error}"
                if not self.outage.unreachable(error):  # that is said once for all sources
                    logger.warning(
                        "stream source %s (%s) failed, retrying in %.0f s: %s",
                        config.name,
                        redact(config.url),
                        delay,
                        status.error,
                    )
                stop.wait(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)

    def _consume_once(
        self, config: SourceConfig, status: ConsumerStatus, stop: threading.Event
    ) -> None:
        pipeline = self.installation.registry.get(config.pipeline)
        broker = open_consumer(config.url, config.group, self.consumer_name, config.options)
        try:
            consumer = SourceConsumer(
                config,
                pipeline,
                broker,
                self.row_intake if config.model else self.intake,
                self.installation.sessions,
                self.metrics,
                self.tuning,
                status,
            )
            status.error = None
            consumer.run(stop)
        finally:
            broker.close()
