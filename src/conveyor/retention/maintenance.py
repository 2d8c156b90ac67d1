"""One maintenance pass: roll up, then prune what the policy lets go and the roll-ups cover.
``conveyor maintenance`` runs one; ``conveyor up`` runs one every ``interval_minutes``."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from conveyor.ingest.abandoned import remove_abandoned_work_dirs
from conveyor.retention import partitions, prune
from conveyor.retention.policy import HOUR, MINUTE, RetentionPolicy, cutoff, prune_before
from conveyor.retention.rollups import PREDICTIONS, STEP_RUNS, roll_hours, roll_minutes, watermark
from conveyor.store.models import utcnow
from conveyor.store.outage_log import OutageLog
from conveyor.streams.pruning import prune_identities

if TYPE_CHECKING:
    from conveyor.storage.files import Storage

logger = logging.getLogger(__name__)


@dataclass
class MaintenanceReport:
    rolled_up: dict[str, int] = field(default_factory=dict)  # roll-up rows made
    pruned: dict[str, int] = field(default_factory=dict)  # rows deleted

    def summary(self) -> str:
        made = ", ".join(f"{k} {v}" for k, v in self.rolled_up.items())
        gone = ", ".join(f"{k} {v}" for k, v in self.pruned.items())
        return f"rolled up: {made}; pruned: {gone}"


def run_maintenance(
    sessions: sessionmaker[Session],
    policy: RetentionPolicy,
    now: datetime | None = None,
    storage: Storage | None = None,
) -> MaintenanceReport:
    """With ``storage``, also the work folders a dead upload left (ingest/abandoned.py)."""
    now = now or utcnow()
    report = MaintenanceReport()
    partitions.ensure_days(sessions.kw["bind"], now)  # PostgreSQL: the coming days
    for spec in (PREDICTIONS, STEP_RUNS):
        report.rolled_up[f"{spec.name}:{MINUTE}"] = roll_minutes(sessions, spec, now, policy)
        report.rolled_up[f"{spec.name}:{HOUR}"] = roll_hours(sessions, spec, policy)
    _prune(sessions, policy, now, report)
    batching = {"batch_rows": policy.batch_rows, "pause_seconds": policy.batch_pause_seconds}
    days = policy.stream_messages_days
    report.pruned["stream_messages"] = prune_identities(sessions, now, days, **batching)
    if storage is not None:
        report.pruned["abandoned_work_dirs"] = remove_abandoned_work_dirs(storage, sessions, now)
    return report


def _prune(
    sessions: sessionmaker[Session],
    policy: RetentionPolicy,
    now: datetime,
    report: MaintenanceReport,
) -> None:
    batching = {"batch_rows": policy.batch_rows, "pause_seconds": policy.batch_pause_seconds}
    with sessions() as session:
        rolled = {
            f"{spec.name}:{resolution}": watermark(session, f"{spec.name}:{resolution}")
            for spec in (PREDICTIONS, STEP_RUNS)
            for resolution in (MINUTE, HOUR)
        }
    raw = (
        ("predictions", policy.predictions_days, prune.prune_predictions),
        ("step_runs", policy.step_runs_days, prune.prune_step_runs),
    )
    for name, days, prune_raw in raw:
        before = prune_before(cutoff(now, days), rolled[f"{name}:{MINUTE}"])
        if before is None:
            continue
        whole_days = 0
        if name == "predictions":  # PostgreSQL: whole days first, a catalog change each
            whole_days = partitions.drop_days_before(sessions.kw["bind"], before)
        report.pruned[name] = whole_days + prune_raw(sessions, before, **batching)
    before = cutoff(now, policy.feedback_days)
    if before is not None:
        report.pruned["prediction_feedback"] = prune.prune_feedback(sessions, before, **batching)
    for spec in (PREDICTIONS, STEP_RUNS):
        # Minutes go once their hours exist; hours when the policy says.
        minutes_before = prune_before(
            cutoff(now, policy.minute_rollups_days), rolled[f"{spec.name}:{HOUR}"]
        )
        hours_before = cutoff(now, policy.hour_rollups_days)
        for resolution, before in ((MINUTE, minutes_before), (HOUR, hours_before)):
            if before is not None:
                report.pruned[f"{spec.name}:{resolution}"] = prune.prune_rollups(
                    sessions, spec.table, resolution, before, **batching
                )


def start_schedule(
    sessions: sessionmaker[Session],
    policy: RetentionPolicy,
    interval_seconds: float,
    stop: threading.Event,
    storage: Storage | None = None,
) -> threading.Thread:
    """Run maintenance every ``interval_seconds`` until ``stop`` (the first pass at once)."""

    outage = OutageLog("maintenance", interval_seconds, logger)

    def loop() -> None:
        while not stop.is_set():
            with outage.attempt("maintenance failed"):  # logged; tried again next time
                report = run_maintenance(sessions, policy, storage=storage)
                logger.info("maintenance: %s", report.summary())
            stop.wait(interval_seconds)

    thread = threading.Thread(target=loop, name="conveyor-maintenance", daemon=True)
    thread.start()
    return thread
