"""The controller: claims items with leases, runs their DAG steps on the executor, commits.

One loop iteration polls finished tasks, decides what each outcome means for its item, and
writes everything in one fenced transaction (step outcomes, item states, newly claimed items
and the step runs about to start); only then are new tasks handed to the executor. Backpressure:
the controller holds at most ``max_inflight`` items, so queued work costs rows, not Ray memory.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from conveyor.core.commits import CommitBatch, FinishedRun, ItemChange, StartedRun
from conveyor.core.lifecycle import ItemStatus, StepStatus, decide_after_failure
from conveyor.engine.contract import StepOutcome, StepTask
from conveyor.engine.executor import Executor, ExecutorLost, TaskHandle
from conveyor.engine.metrics import ControllerStats, EngineMetrics, NoMetrics, report_commit
from conveyor.engine.store_outage import StoreOutage
from conveyor.errors import ConveyorError
from conveyor.pipeline.registry import PipelineRegistry
from conveyor.pipeline.spec import Pipeline
from conveyor.store.availability import store_unavailable
from conveyor.store.leases import (
    ClaimedItem,
    LeaseHolder,
    claim_next_items,
    release_all,
    renew_leases,
)
from conveyor.store.models import utcnow
from conveyor.store.outcomes import FinalItemsHook, apply_batch
from conveyor.store.queries import count_unfinished

logger = logging.getLogger(__name__)
IDLE_CLAIM_INTERVAL = 0.25
EXECUTOR_CHECK_SECONDS = 2.0  # how soon a lost Ray head is noticed when no task reports it
RECONNECT_INTERVAL = 1.0


@dataclass
class RunningStep:
    step: str
    run_id: int
    attempt: int
    handle: TaskHandle


@dataclass
class ActiveItem:
    claim: ClaimedItem
    pipeline: Pipeline
    running: dict[str, RunningStep] = field(default_factory=dict)
    retry_at: dict[str, datetime] = field(default_factory=dict)

    def steps_to_start(self, now: datetime) -> list[str]:
        waiting = {s for s, due in self.retry_at.items() if due > now}
        return self.pipeline.ready_steps(set(self.claim.outputs), set(self.running) | waiting)

    def is_complete(self) -> bool:
        return len(self.claim.outputs) == len(self.pipeline.steps)


class Controller:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: PipelineRegistry,
        executor: Executor,
        lease_seconds: float = 30.0,
        poll_interval: float = 0.05,
        max_inflight: int | None = None,
        inflight_per_cpu: int = 16,
        metrics: EngineMetrics | None = None,
        final_hooks: Sequence[FinalItemsHook] = (),
    ) -> None:
        self.sessions = sessions
        self.final_hooks = tuple(final_hooks)  # written in the commit that makes items final
        self.registry = registry
        self.executor = executor
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.holder = LeaseHolder(owner, lease_seconds)
        self.poll_interval = poll_interval
        cpu_bound = int(executor.total_cpus() * inflight_per_cpu)
        self.max_inflight = max(1, min(max_inflight or cpu_bound, cpu_bound))
        self.active: dict[str, ActiveItem] = {}
        self.stats = ControllerStats()
        self.metrics = metrics or NoMetrics()
        self._next_renewal = 0.0
        self._next_claim = 0.0
        self._handles: dict[TaskHandle, tuple[str, str]] = {}
        self._executor_lost = False
        self._next_executor_check = 0.0
        self._hand_back: tuple[CommitBatch, dict[str, int], datetime] | None = None
        self.outage = StoreOutage(lease_seconds)

    # -- public ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set, then hand held items back."""
        try:
            while not stop.is_set():
                self.step_once()
        finally:
            self.shutdown()

    def run_until_idle(self, timeout: float | None = None) -> None:
        """Run until every item in the store is final (for the CLI, tests and benchmarks).

        Items another controller holds count too: if it died, their leases expire and this
        controller finishes them."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"work not finished within {timeout}s")
            claimed = self.step_once(force_claim=True)
            idle = not self.active and not claimed and not self.outage.holds_outcomes()
            if idle and self._all_final():
                return

    def step_once(self, force_claim: bool = False) -> int:
        """One loop iteration; returns how many items it claimed.

        While the store cannot be reached, outcomes pile up in memory, nothing is claimed and
        no step starts; the first commit after it returns writes them all. While the Ray
        cluster is lost, nothing runs until the executor joins it again."""
        finished = self._collect()
        return 0 if finished is None else self._iterate(finished, force_claim)

    def _iterate(self, finished: list[tuple[TaskHandle, StepOutcome]], force_claim: bool) -> int:
        working = time.monotonic()  # lag: how long finished tasks wait for this iteration
        now = utcnow()
        batch, kept_generations = self.outage.take()
        # Before outcomes retire items, so their final writes are fenced.
        held = self._held() | kept_generations
        for handle, outcome in finished:
            self._apply_outcome(handle, outcome, batch, now)
        claims: list[ClaimedItem] = []
        planned: list[tuple[ActiveItem, StartedRun]] = []
        try:
            with self.sessions.begin() as session:
                if time.monotonic() >= self._next_renewal:
                    self._renew(session, batch, now)
                claims = self._claim(session, now, force_claim, batch)
                held |= {claim.id: claim.generation for claim in claims}
                planned = self._plan_starts(batch, now)
                report = apply_batch(session, self.holder, batch, held, now, self.final_hooks)
        except DBAPIError as error:
            if not store_unavailable(error):
                raise
            self._undo_rolled_back(batch, claims, planned)
            self.outage.keep(batch, held, error)
            return 0
        self.outage.committed()
        report_commit(self.metrics, batch, report)
        self.stats.count(batch, report)
        self.metrics.leases_taken_over(sum(claim.taken_over for claim in claims))
        self._drop(report.lost)
        for active, started in planned:
            run_id = report.run_ids.get(started)
            if run_id is not None and active.claim.id not in report.lost:
                self._submit(active, started, run_id)
        self.stats.loop_lag_seconds = time.monotonic() - working
        self.metrics.loop_finished(self.stats.loop_lag_seconds, len(self.active))
        if not self.active and not claims and not finished:
            time.sleep(self.poll_interval)
        return len(claims)

    def shutdown(self) -> None:
        for handle in list(self._handles):
            self.executor.cancel(handle)
        self._handles.clear()
        self.active.clear()
        try:
            with self.sessions.begin() as session:
                release_all(session, self.holder)
        except DBAPIError as error:
            if not store_unavailable(error):
                raise
            # The leases expire instead; the next owner re-runs the uncommitted steps.
            logger.warning("the store is unreachable: held items are resumed when leases expire")

    # -- store outages -----------------------------------------------------------------------

    def _undo_rolled_back(
        self,
        batch: CommitBatch,
        claims: list[ClaimedItem],
        planned: list[tuple[ActiveItem, StartedRun]],
    ) -> None:
        """Undo what the rolled-back transaction would have started (its claims and step
        runs), leaving in ``batch`` the outcomes to keep for the next attempt."""
        claimed = {claim.id for claim in claims}
        for item_id in claimed:
            self.active.pop(item_id, None)
        for active, started in planned:
            active.claim.runs[started.step] -= 1
        batch.started.clear()
        batch.changes[:] = [c for c in batch.changes if c.item_id not in claimed]
        self._next_renewal = 0.0  # the renewal rolled back too

    def _all_final(self) -> bool:
        try:
            with self.sessions() as session:
                return count_unfinished(session) == 0
        except DBAPIError as error:
            if not store_unavailable(error):
                raise
            return False

    # -- the executor's cluster -------------------------------------------------------------

    def _collect(self) -> list[tuple[TaskHandle, StepOutcome]] | None:
        """Finished tasks; None while the executor's cluster is lost."""
        if not self._commit_hand_back():
            return None
        if self._executor_lost and not self._rejoin():
            return None
        try:
            if time.monotonic() >= self._next_executor_check:
                self._next_executor_check = time.monotonic() + EXECUTOR_CHECK_SECONDS
                self.executor.check()
            timeout = self.poll_interval if self.active else 0
            return self.executor.wait(list(self._handles), timeout)
        except ExecutorLost as error:
            self._hand_back_after_loss(str(error))
            return None

    def _hand_back_after_loss(self, reason: str) -> None:
        """The Ray cluster is gone with every running task: mark their runs lost and hand the
        items back, so whoever claims them next (this controller once it rejoins) re-runs
        exactly the steps that had no committed success."""
        logger.warning("lost the Ray cluster (%s); handing %d items back", reason, len(self.active))
        self._executor_lost = True
        now = utcnow()
        # Outcomes held through a store outage are committed with the hand-back.
        batch, kept_generations = self.outage.take()
        held = self._held() | kept_generations
        for active in self.active.values():
            for running in active.running.values():
                batch.finished.append(_lost_run(active, running, reason, now))
        self._handles.clear()
        self.active.clear()
        self._hand_back = (batch, held, now)
        self._commit_hand_back()

    def _commit_hand_back(self) -> bool:
        """Commit a pending hand-back; False while the store cannot be reached (the Ray
        cluster and the store can be lost at once: the hand-back waits for the store)."""
        if self._hand_back is None:
            return True
        batch, held, now = self._hand_back
        try:
            with self.sessions.begin() as session:
                report = apply_batch(session, self.holder, batch, held, now, self.final_hooks)
                release_all(session, self.holder)
        except DBAPIError as error:
            if not store_unavailable(error):
                raise
            self.outage.wait_before_retry()
            return False
        self._hand_back = None
        report_commit(self.metrics, batch, report)
        return True

    def _rejoin(self) -> bool:
        if not self.executor.reconnect():
            time.sleep(RECONNECT_INTERVAL)
            return False
        self._executor_lost = False
        logger.warning("rejoined the Ray cluster; resuming the handed-back items")
        return True

    # -- outcomes ----------------------------------------------------------------------------

    def _apply_outcome(
        self, handle: TaskHandle, outcome: StepOutcome, batch: CommitBatch, now: datetime
    ) -> None:
        owner = self._handles.pop(handle, None)
        if owner is None:  # its item already ended this iteration (failed or cancelled)
            return
        item_id, step_name = owner
        active = self.active.get(item_id)
        if active is None or step_name not in active.running:
            return
        running = active.running.pop(step_name)
        batch.finished.append(_finished_run(item_id, running, active.pipeline.name, outcome))
        if outcome.succeeded:
            active.claim.outputs[step_name] = outcome.output
            if active.is_complete():
                self._complete(active, batch)
            return
        self._after_failure(active, step_name, outcome, batch, now)

    def _complete(self, active: ActiveItem, batch: CommitBatch) -> None:
        batch.changes.append(
            ItemChange(
                active.claim.id,
                ItemStatus.SUCCEEDED,
                result=active.pipeline.final_result(active.claim.outputs),
                pipeline=active.pipeline.name,
                pipeline_version=active.pipeline.version,
                store_result=active.pipeline.store_result,
            )
        )
        del self.active[active.claim.id]

    def _after_failure(
        self,
        active: ActiveItem,
        step_name: str,
        outcome: StepOutcome,
        batch: CommitBatch,
        now: datetime,
    ) -> None:
        claim = active.claim
        claim.attempts[step_name] += 1
        error = outcome.error or "unknown error"
        step = active.pipeline.steps[step_name]
        decision = decide_after_failure(
            step.retry, claim.attempts[step_name], outcome.permanent, now
        )
        if decision.retry_at is not None:
            active.retry_at[step_name] = decision.retry_at
            message = f"step {step_name} attempt {claim.attempts[step_name]} failed: {error}"
            batch.changes.append(
                ItemChange(
                    claim.id,
                    ItemStatus.RETRYING,
                    error=message,
                    next_attempt_at=decision.retry_at,
                    pipeline=claim.pipeline,
                    step=step_name,
                )
            )
            return
        message = f"step {step_name} failed ({decision.reason}): {error}"
        self._finish_early(active, ItemStatus.FAILED, message, batch)

    def _finish_early(
        self, active: ActiveItem, status: ItemStatus, message: str, batch: CommitBatch
    ) -> None:
        for running in active.running.values():
            # A failed item's siblings are left to finish and their outcomes ignored: cancelling
            # a task as it completes can crash the Ray driver (a Ray bug, see docs/engine.md).
            if status != ItemStatus.FAILED:
                self.executor.cancel(running.handle)
            self._handles.pop(running.handle, None)
            batch.finished.append(
                FinishedRun(
                    active.claim.id,
                    running.run_id,
                    StepStatus.CANCELLED,
                    error=f"cancelled: {message}",
                    finished_at=utcnow(),
                    pipeline=active.pipeline.name,
                    step=running.step,
                )
            )
        batch.changes.append(
            ItemChange(active.claim.id, status, error=message, pipeline=active.pipeline.name)
        )
        del self.active[active.claim.id]

    # -- leases and claims -------------------------------------------------------------------

    def _held(self) -> dict[str, int]:
        return {item_id: a.claim.generation for item_id, a in self.active.items()}

    def _renew(self, session: Session, batch: CommitBatch, now: datetime) -> None:
        held = self._held()
        owned, cancel_requested = renew_leases(session, self.holder, held, now)
        self.metrics.leases_renewed(len(owned))
        self._drop(set(held) - owned)
        for item_id in cancel_requested:
            if item_id in self.active:
                self._finish_early(
                    self.active[item_id], ItemStatus.CANCELLED, "cancelled by an operator", batch
                )
        self._next_renewal = time.monotonic() + self.holder.lease_seconds / 3

    def _drop(self, lost: Iterable[str]) -> None:
        """Forget items whose lease another controller took over."""
        for item_id in lost:
            active = self.active.pop(item_id, None)
            if active is None:
                continue
            self.metrics.leases_lost(1)
            logger.warning("lost the lease of item %s; another controller took it", item_id)
            for running in active.running.values():
                self.executor.cancel(running.handle)
                self._handles.pop(running.handle, None)

    def _claim(
        self, session: Session, now: datetime, force: bool, batch: CommitBatch
    ) -> list[ClaimedItem]:
        room = self.max_inflight - len(self.active)
        # Claim in batches (a quarter of the window at least): fewer, cheaper store round trips.
        if room < max(1, self.max_inflight // 4) and self.active:
            return []
        if not force and time.monotonic() < self._next_claim:
            return []
        take_over = self.outage.may_take_over()
        claims = claim_next_items(session, self.holder, room, now, take_over)
        self._next_claim = 0.0 if claims else time.monotonic() + IDLE_CLAIM_INTERVAL
        for claim in claims:
            self._activate(claim, batch)
        return claims

    def _activate(self, claim: ClaimedItem, batch: CommitBatch) -> None:
        try:
            pipeline = self.registry.get(claim.pipeline)
        except ConveyorError as error:
            change = ItemChange(claim.id, ItemStatus.FAILED, str(error), pipeline=claim.pipeline)
            batch.changes.append(change)
            return
        if claim.cancel_requested:
            batch.changes.append(
                ItemChange(
                    claim.id,
                    ItemStatus.CANCELLED,
                    error="cancelled by an operator",
                    pipeline=claim.pipeline,
                )
            )
            return
        active = ActiveItem(claim, pipeline)
        self.active[claim.id] = active
        if active.is_complete():  # every step had committed before the previous owner died
            self._complete(active, batch)

    # -- starting steps ----------------------------------------------------------------------

    def _plan_starts(
        self, batch: CommitBatch, now: datetime
    ) -> list[tuple[ActiveItem, StartedRun]]:
        """Step runs to record in this iteration's commit and to submit after it."""
        planned: list[tuple[ActiveItem, StartedRun]] = []
        for active in self.active.values():
            for step_name in active.steps_to_start(now):
                active.claim.runs[step_name] += 1
                started = StartedRun(active.claim.id, step_name, active.claim.runs[step_name], now)
                batch.started.append(started)
                planned.append((active, started))
                if step_name in active.retry_at:
                    del active.retry_at[step_name]
                    batch.changes.append(ItemChange(active.claim.id, ItemStatus.RUNNING))
        return planned

    def _submit(self, active: ActiveItem, started: StartedRun, run_id: int) -> None:
        claim = active.claim
        task = StepTask(
            item_id=claim.id,
            pipeline=claim.pipeline,
            step=started.step,
            attempt=started.attempt,
            work_dir=claim.work_dir,
            stored_name=claim.stored_name,
            record=claim.record,
            input_url=claim.input_url,
            inputs={
                name: claim.outputs[name] for name in active.pipeline.dependencies[started.step]
            },
        )
        handle = self.executor.submit(active.pipeline.steps[started.step], task)
        active.running[started.step] = RunningStep(started.step, run_id, started.attempt, handle)
        self._handles[handle] = (claim.id, started.step)


def _lost_run(active: ActiveItem, run: RunningStep, reason: str, now: datetime) -> FinishedRun:
    return FinishedRun(
        active.claim.id,
        run.run_id,
        StepStatus.LOST,
        error=f"the Ray cluster was lost ({reason}); step re-run",
        finished_at=now,
        pipeline=active.pipeline.name,
        step=run.step,
    )


def _finished_run(
    item_id: str, run: RunningStep, pipeline: str, outcome: StepOutcome
) -> FinishedRun:
    return FinishedRun(
        item_id=item_id,
        run_id=run.run_id,
        status=StepStatus.SUCCEEDED if outcome.succeeded else StepStatus.FAILED,
        output=outcome.output if outcome.succeeded else None,
        error=None if outcome.succeeded else str(outcome.error),
        logs=outcome.logs or None,
        worker=outcome.worker,
        node_id=outcome.node_id,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at or utcnow(),
        pipeline=pipeline,
        step=run.step,
    )
