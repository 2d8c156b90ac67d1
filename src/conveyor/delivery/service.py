"""One delivery: a commit of a model repository, through training, the gate, the canary, to a
promotion or a rollback. ``conveyor models deliver`` runs it; the git hook and the GitHub
Actions template call that command (docs/cicd.md).

Training goes through the ordinary path (a training item on the engine, registered by the
registrar), so it runs wherever the installation's steps run: the cluster's Ray with
``conveyor up``, or a controller started here when no ``up`` serves the home.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from conveyor.delivery import canary as canaries
from conveyor.delivery.audit import AuditTrail
from conveyor.delivery.layout import LAYOUT_FILE, DeliverySpec, parse_layout
from conveyor.delivery.repository import CommitInfo, GitRepository
from conveyor.delivery.rules import PROMOTE, ROLLBACK, WAIT, Verdict, canary_verdict, gate_passed
from conveyor.errors import ConveyorError
from conveyor.installation import Installation
from conveyor.models.history import FAILED, REGISTERED
from conveyor.models.service import ModelOps
from conveyor.models.submission import submit_training
from conveyor.store import queries

POLL_SECONDS = 0.5
PROMOTED, REFUSED, ROLLED_BACK, SKIPPED, FAILED_OUTCOME = (
    "promoted",
    "refused",
    "rolled-back",
    "skipped",
    "failed",
)


@dataclass(frozen=True)
class DeliveryRequest:
    repository: Path
    ref: str = "HEAD"
    pushed_ref: str | None = None  # refs/heads/<branch> from a hook: other branches are skipped
    requested_by: str = "unknown"
    train_timeout_seconds: float = 7200.0
    local_controller: bool = True  # run one here while no `conveyor up` serves the home


@dataclass(frozen=True)
class DeliveryResult:
    delivery_id: str
    model: str
    commit: str
    outcome: str
    detail: str
    version: int | None = None


class Delivery:
    """Runs deliveries on one installation; ``report`` gets a line per step."""

    def __init__(
        self,
        installation: Installation,
        report: Callable[[str], None] = lambda line: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.installation = installation
        self.ops = ModelOps(installation)
        self.report, self.sleep = report, sleep

    def run(self, request: DeliveryRequest) -> DeliveryResult:
        repository = GitRepository(request.repository)
        commit = repository.commit(request.ref)
        spec = parse_layout(repository.read(commit.sha, LAYOUT_FILE).decode())
        model = self.ops.pipeline(spec.pipeline).model_name or spec.pipeline
        delivery_id = uuid.uuid4().hex[:12]
        audit = AuditTrail(self.installation.sessions, model, delivery_id, commit.sha)
        if request.pushed_ref and request.pushed_ref != f"refs/heads/{spec.branch}":
            detail = f"{request.pushed_ref} is not the delivered branch {spec.branch}"
            return self._finish(audit, model, SKIPPED, detail)
        self._step(audit, "received", "ok", f"{commit.subject} ({commit.author})")
        try:
            return self._deliver(request, repository, commit, spec, audit, model)
        except ConveyorError as error:
            return self._finish(audit, model, FAILED_OUTCOME, str(error))
        except (KeyboardInterrupt, SystemExit):
            self._finish(audit, model, FAILED_OUTCOME, "interrupted (a signal or Ctrl-C)")
            raise

    def _deliver(
        self,
        request: DeliveryRequest,
        repository: GitRepository,
        commit: CommitInfo,
        spec: DeliverySpec,
        audit: AuditTrail,
        model: str,
    ) -> DeliveryResult:
        item_id = self._submit(request, repository, commit, spec)
        self._step(audit, "train", "queued", f"training item {item_id}", item_id=item_id)
        failure = self._wait_for_training(item_id, request)
        if failure:
            return self._finish(audit, model, FAILED_OUTCOME, failure, item_id=item_id)
        self._step(audit, "train", "succeeded", f"training item {item_id}", item_id=item_id)
        version, reason, promoted = self._registration(item_id, model)
        passed = gate_passed(reason)
        self._step(audit, "gate", "passed" if passed else "refused", reason, version, item_id)
        if not passed:
            return self._finish(audit, model, REFUSED, reason, version)
        self._step(audit, "register", "challenger" if not promoted else "champion", "", version)
        if promoted:  # the model's first version: nothing to compare with online
            return self._finish(audit, model, PROMOTED, reason, version)
        if spec.canary is None:
            self._promote(model, version, commit.sha, "gate passed; no canary configured")
            return self._finish(audit, model, PROMOTED, "no canary configured", version)
        return self._run_canary(spec, audit, model, version)

    def _submit(
        self,
        request: DeliveryRequest,
        repository: GitRepository,
        commit: CommitInfo,
        spec: DeliverySpec,
    ) -> str:
        dataset = None
        if spec.dataset:
            source = f"git:{repository.path}@{commit.sha[:12]}:{spec.dataset}"
            dataset = (repository.read(commit.sha, spec.dataset), source)
        gate = asdict(spec.gate)
        delivery = {"commit": commit.sha, "repository": str(repository.path), "gate": gate}
        submission = submit_training(
            self.installation.settings,
            self.installation.submitter,
            spec.pipeline,
            spec.params,
            trigger="git",
            requested_by=request.requested_by,
            dataset=dataset,
            delivery=delivery,
        )
        return submission.item_id

    def _wait_for_training(self, item_id: str, request: DeliveryRequest) -> str | None:
        """None once the item succeeded and is registered, else what went wrong."""
        timeout = request.train_timeout_seconds
        deadline = time.monotonic() + timeout
        with local_controller(self.installation, request.local_controller):
            while time.monotonic() < deadline:
                with self.installation.sessions() as session:
                    item = queries.get_item(session, item_id)
                if item.status in ("failed", "cancelled"):
                    return f"training item {item_id} {item.status}: {item.error or ''}"
                if item.status == "succeeded":
                    return self._wait_for_registration(item_id, deadline)
                self.sleep(POLL_SECONDS)
        return f"training item {item_id} did not finish within {timeout:.0f} s"

    def _wait_for_registration(self, item_id: str, deadline: float) -> str | None:
        while time.monotonic() < deadline:
            self.ops.register_pending()  # claimed in SQL: harmless beside `conveyor up`
            registration = self.ops.registration(item_id)
            if registration is not None and registration.state == REGISTERED:
                return None
            if registration is not None and registration.state == FAILED:
                return f"registering training item {item_id} failed: {registration.error}"
            self.sleep(POLL_SECONDS)
        return f"training item {item_id} was not registered in time"

    def _registration(self, item_id: str, model: str) -> tuple[int, str, bool]:
        """(version, the gate's reason, whether it became champion) of a registered item."""
        registration = self.ops.registration(item_id)
        assert registration is not None and registration.version is not None
        change = next(c for c in reversed(self.ops.history(model)) if c.item_id == item_id)
        return registration.version, change.reason, change.alias == "champion"

    def _run_canary(
        self, spec: DeliverySpec, audit: AuditTrail, model: str, version: int
    ) -> DeliveryResult:
        settings = spec.canary
        assert settings is not None
        actor = f"delivery:{audit.commit[:12]}"
        started = canaries.start_canary(
            self.installation.sessions,
            settings.endpoint,
            model,
            version,
            settings.weight,
            settings.metric,
            actor,
        )
        detail = f"{settings.weight:g}% of {settings.endpoint} to v{version}"
        self._step(
            audit, "canary", "started", detail, version, extra={"experiment": started.experiment_id}
        )
        try:
            verdict = self._watch(spec, started)
        except BaseException:
            canaries.end_canary(self.installation.sessions, started, actor)
            self._step(audit, "canary", "aborted", "routing restored", version)
            raise
        if verdict.action == PROMOTE:
            self._promote(model, version, audit.commit, verdict.reason)
        canaries.end_canary(self.installation.sessions, started, actor)
        outcome = PROMOTED if verdict.action == PROMOTE else ROLLED_BACK
        return self._finish(audit, model, outcome, verdict.reason, version, extra=verdict.as_dict())

    def _watch(self, spec: DeliverySpec, canary: canaries.Canary) -> Verdict:
        settings = spec.canary
        assert settings is not None
        deadline = time.monotonic() + settings.max_minutes * 60
        sessions = self.installation.sessions
        while True:
            if canaries.switched_off(sessions, canary):
                return Verdict(ROLLBACK, "the canary arm was switched off (serving guard or hand)")
            champion, challenger = canaries.arm_counts(sessions, canary, settings.metric)
            timed_out = time.monotonic() >= deadline
            verdict = canary_verdict(champion, challenger, settings, spec.promotion, timed_out)
            if verdict.action != WAIT:
                return verdict
            self.report(f"canary: {verdict.reason}")
            self.sleep(settings.poll_seconds)

    def _promote(self, model: str, version: int, commit: str, reason: str) -> None:
        self.ops.promote(model, version, actor=f"delivery:{commit[:12]}", reason=reason)

    def _step(
        self,
        audit: AuditTrail,
        step: str,
        outcome: str,
        detail: str = "",
        version: int | None = None,
        item_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        audit.record(step, outcome, detail, version, item_id, extra)
        shown = f" v{version}" if version is not None else ""
        self.report(f"{step}: {outcome}{shown}{' - ' + detail if detail else ''}")

    def _finish(
        self,
        audit: AuditTrail,
        model: str,
        outcome: str,
        detail: str,
        version: int | None = None,
        item_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> DeliveryResult:
        self._step(audit, "done", outcome, detail, version, item_id, extra)
        return DeliveryResult(audit.delivery_id, model, audit.commit, outcome, detail, version)


@contextmanager
def local_controller(installation: Installation, allowed: bool = True) -> Iterator[bool]:
    """Run a controller here while waiting, unless ``conveyor up`` serves this home."""
    from conveyor.engine.presence import controller_alive

    if not allowed or controller_alive(installation.settings.home):
        yield False
        return
    stop = threading.Event()
    worker = threading.Thread(target=installation.controller().run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield True
    finally:
        stop.set()
        worker.join()
