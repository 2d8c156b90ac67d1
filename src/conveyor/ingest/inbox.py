"""The inbox: files dropped into ``inbox/`` (default pipeline) or ``inbox/<pipeline>/``.

A scan moves each settled file atomically into its own work folder and records an item; a file
that cannot be recorded goes back to the inbox. Duplicates (same content, same pipeline
version) move to ``inbox/duplicates/`` instead of being processed again.
"""

from __future__ import annotations

import logging
import posixpath
import threading
import time
from dataclasses import dataclass, field

from conveyor.errors import ConveyorError
from conveyor.ingest.submit import Submission, Submitter
from conveyor.storage.files import INBOX, InboxEntry
from conveyor.store.outage_log import OutageLog

DUPLICATES_FOLDER = "duplicates"
logger = logging.getLogger(__name__)


@dataclass
class ScanReport:
    accepted: list[Submission] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)  # still being written, or no pipeline


class Inbox:
    def __init__(
        self, submitter: Submitter, default_pipeline: str | None, settle_seconds: float = 1.0
    ) -> None:
        self.submitter = submitter
        self.storage = submitter.storage
        self.default_pipeline = default_pipeline
        self.settle_seconds = settle_seconds

    def pending(self) -> list[tuple[InboxEntry, str | None]]:
        """Files waiting, each with the pipeline it will go to (None: no pipeline for it)."""
        waiting = [(entry, self.default_pipeline) for entry in self.storage.list_inbox()]
        for name in self.submitter.registry.names():
            waiting += [(entry, name) for entry in self.storage.list_inbox(name)]
        return waiting

    def scan(self, settle_seconds: float | None = None) -> ScanReport:
        settle = self.settle_seconds if settle_seconds is None else settle_seconds
        report = ScanReport()
        cutoff = time.time() - settle
        for entry, pipeline in self.pending():
            if pipeline is None or entry.modified_at > cutoff:
                report.waiting.append(entry.name)
                continue
            self._take(entry, pipeline, report)
        return report

    def _take(self, entry: InboxEntry, pipeline: str, report: ScanReport) -> None:
        try:
            work_dir, stored_name = self.storage.take_from_inbox(entry.name)
        except FileNotFoundError:  # another scanner took it first
            return
        folder = posixpath.dirname(entry.name)
        try:
            submission = self.submitter.accept_moved_file(
                pipeline, work_dir, stored_name, posixpath.basename(entry.name)
            )
        except ConveyorError as error:
            self.storage.return_to_inbox(work_dir, stored_name, posixpath.join("rejected", folder))
            report.rejected[entry.name] = str(error)
            logger.warning("inbox file %s rejected: %s", entry.name, error)
            return
        except BaseException:
            self.storage.return_to_inbox(work_dir, stored_name, folder)
            raise
        if submission.duplicate:
            self.storage.move_out_of_work(
                work_dir, stored_name, posixpath.join(INBOX, DUPLICATES_FOLDER)
            )
            report.duplicates.append(entry.name)
        else:
            report.accepted.append(submission)


class InboxWatcher(threading.Thread):
    """Scans the inbox every ``interval`` seconds until stopped."""

    def __init__(self, inbox: Inbox, interval: float, stop: threading.Event) -> None:
        super().__init__(name="conveyor-inbox", daemon=True)
        self.inbox = inbox
        self.interval = interval
        self.stop = stop
        self.outage = OutageLog("inbox scan", interval, logger)

    def run(self) -> None:
        while not self.stop.is_set():
            with self.outage.attempt("inbox scan failed; will try again"):
                report = self.inbox.scan()
                if report.accepted:
                    logger.info("inbox: queued %d file(s)", len(report.accepted))
            self.stop.wait(self.interval)
