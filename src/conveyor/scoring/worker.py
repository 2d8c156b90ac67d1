"""Batch scoring jobs started over the API outlive the process that started them.

The API plans a job (the job and its parts are in the store before it answers) and scores it in
a thread of its own process, which beats a heartbeat (the job's ``updated_at``) every
``HEARTBEAT_SECONDS``. Every ``conveyor up`` runs a :class:`ScoringWorker` that looks for API
jobs still ``running`` without a heartbeat for ``STALE_SECONDS`` (their process died: a crash,
``kill -9``, a lost node), claims each with a compare-and-set on that heartbeat, so that one
process alone takes it, and resumes it as ``conveyor score`` resumes: only the parts not
recorded are scored. Jobs of ``conveyor score`` itself are left to the command.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from conveyor.scoring import jobs
from conveyor.store.outage_log import OutageLog

if TYPE_CHECKING:
    from conveyor.installation import Installation
    from conveyor.scoring.service import BatchScoring, PreparedJob

logger = logging.getLogger(__name__)

API_REQUESTER = "api:"  # requested_by of the jobs the API starts
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0
POLL_SECONDS = 15.0


def run_with_heartbeat(scoring: BatchScoring, prepared: PreparedJob) -> None:
    """Score the job to its end, beating its heartbeat meanwhile; failures are on the job."""
    stop = threading.Event()
    beat = threading.Thread(
        target=_beat, args=(scoring, prepared.job_id, stop), name="scoring-heartbeat", daemon=True
    )
    beat.start()
    try:
        scoring.run(prepared)
    except Exception:  # recorded on the job by run(); nobody else to tell
        logger.exception("scoring job %s failed", prepared.job_id)
    finally:
        stop.set()


def _beat(scoring: BatchScoring, job_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            with scoring.installation.sessions.begin() as session:
                jobs.touch(session, job_id)
        except Exception as error:  # the store is away for a moment; the next beat retries
            logger.warning("scoring job %s: heartbeat not written (%s)", job_id, error)


class ScoringWorker:
    """Takes over API scoring jobs whose process stopped, one at a time, in a thread."""

    def __init__(
        self,
        installation: Installation,
        stale_seconds: float = STALE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        from conveyor.scoring.service import BatchScoring

        self.scoring = BatchScoring(installation)
        self.stale_seconds = stale_seconds
        self.poll_seconds = poll_seconds
        self.outage = OutageLog("scoring worker", poll_seconds, logger)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self._loop, args=(stop,), name="scoring-worker", daemon=True
        )
        thread.start()
        return thread

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self.outage.attempt("scoring worker: looking for stopped jobs failed"):
                self.adopt_once()  # a failure is logged; the next round tries again
            stop.wait(self.poll_seconds)

    def adopt_once(self) -> list[str]:
        """Claim and finish every stale API job found now; the ids of those taken over."""
        with self.scoring.installation.sessions() as session:
            candidates = jobs.stale_jobs(session, API_REQUESTER, self.stale_seconds)
        adopted = []
        for job_id, seen in candidates:
            with self.scoring.installation.sessions.begin() as session:
                if not jobs.claim(session, job_id, seen):
                    continue  # another process took it
            logger.warning("scoring job %s: its process stopped; resuming it here", job_id)
            adopted.append(job_id)
            self._resume(job_id)
        return adopted

    def _resume(self, job_id: str) -> None:
        try:
            prepared = self.scoring.resume_job(job_id)
        except Exception as error:  # e.g. the model version is gone: say so on the job
            self.scoring.fail_job(job_id, error)
            return
        run_with_heartbeat(self.scoring, prepared)
