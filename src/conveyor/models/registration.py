"""Registering finished training items: MLflow run, model version, promotion gate, aliases.

Runs on the control side, never in a Ray step. Each item is claimed in SQL first, so two
processes never register it twice; MLflow objects carry the item id, so a registration that
died half-way is completed, not duplicated, by the next attempt. The gate's decision and the
alias change are committed to SQL before the alias is set in MLflow; ``sync_aliases`` makes
MLflow match SQL again if a process died between the two.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from conveyor.delivery.rules import delivered_decision, delivery_of, gate_rule, source_tags
from conveyor.models import history
from conveyor.models.flavors import ModelFlavor
from conveyor.models.promotion import (
    CHALLENGE,
    CHALLENGER,
    CHAMPION,
    PROMOTE,
    AliasChange,
    Decision,
    GateRule,
    current_aliases,
    decide,
)
from conveyor.models.registry import ModelRegistry
from conveyor.models.training import TrainingOutcome, TrainingPipeline
from conveyor.settings import Settings
from conveyor.storage.files import Storage
from conveyor.store import queries

logger = logging.getLogger(__name__)
GATE_ACTOR = "promotion gate"
CLAIM_STALE_SECONDS = 600.0


class LostClaimError(Exception):
    """This process's claim on a registration went stale and another process took it."""


@dataclass(frozen=True)
class Registration:
    item_id: str
    model: str
    version: int
    decision: Decision


class Registrar:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        storage: Storage,
        tracking: ModelRegistry,
        pipelines: list[TrainingPipeline],
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.storage = storage
        self.tracking = tracking
        self.pipelines = {p.name: p for p in pipelines}
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def register_pending(self) -> list[Registration]:
        """Register every succeeded training item nobody has registered yet."""
        if not self.pipelines:
            return []
        stale = history.stale_cutoff(CLAIM_STALE_SECONDS)
        with self.sessions() as session:
            item_ids = history.unregistered_items(session, list(self.pipelines), stale)
        done = []
        for item_id in item_ids:
            registration = self._claim_and_register(item_id, stale)
            if registration is not None:
                done.append(registration)
        return done

    def _claim_and_register(self, item_id: str, stale: Any) -> Registration | None:
        with self.sessions() as session:
            item = queries.get_item(session, item_id)
            result = queries.result_of(session, item_id)
        pipeline = self.pipelines[item.pipeline]
        if not history.claim_registration(
            self.sessions, item_id, pipeline.model_name, self.owner, stale
        ):
            return None
        try:
            outcome = TrainingOutcome.from_result(result.result if result else None)
            return self._register(item, outcome)
        except LostClaimError:
            logger.warning("registration of %s was taken over by another process", item_id)
            return None
        except Exception as error:
            state = history.fail_registration(self.sessions, item_id, self.owner, repr(error))
            logger.exception("registering training item %s failed (now %s)", item_id, state)
            return None

    def _register(self, item: Any, outcome: TrainingOutcome) -> Registration:
        with tempfile.TemporaryDirectory(prefix="conveyor-register-") as folder:
            files = self._local_artifacts(item.work_dir, outcome, Path(folder))
            version, run_id = self._log_and_register(item, outcome, files)
            decision = self._decide_and_record(item, outcome, files, version, run_id)
        self.tracking.tag_run(
            run_id, {"conveyor.gate": decision.alias, "conveyor.gate_reason": decision.reason}
        )
        self.sync_aliases(outcome.model)
        logger.info(
            "registered %s v%d as %s: %s", outcome.model, version, decision.alias, decision.reason
        )
        return Registration(item.id, outcome.model, version, decision)

    def _decide_and_record(
        self, item: Any, outcome: TrainingOutcome, files: dict, version: int, run_id: str
    ) -> Decision:
        for _ in range(3):  # retried only if another process moved the champion meanwhile
            champion = self._current(outcome.model).get(CHAMPION)
            decision = self._gate(item, outcome, files, champion)
            change = self._change_for(outcome.model, decision, version)
            with self.sessions.begin() as session:
                if self._current(outcome.model, session).get(CHAMPION) != champion:
                    continue
                finished = history.finish_registration(
                    session,
                    item.id,
                    self.owner,
                    version,
                    run_id,
                    [(change, decision.reason)],
                    GATE_ACTOR,
                )
                if not finished:
                    raise LostClaimError(item.id)
            return decision
        raise RuntimeError(f"the champion of {outcome.model} kept moving; will try again")

    def _log_and_register(
        self, item: Any, outcome: TrainingOutcome, files: dict
    ) -> tuple[int, str]:
        tracking, model = self.tracking, outcome.model
        run_id = tracking.find_run(model, item.id)
        existing = tracking.find_version(model, item.id)
        if run_id is not None and existing is not None:
            return existing, run_id
        if run_id is None:
            run_id = tracking.start_run(model, item.id, self._tags(item, outcome), item.started_at)
        tracking.log_values(run_id, outcome.flat_params(), outcome.flat_metrics())
        model_uri = self._flavor(item).log(tracking, run_id, files, outcome)
        if "onnx" in files:
            tracking.log_file(run_id, files["onnx"], "onnx")
        tracking.log_file(run_id, files["heldout"], "data")
        version = tracking.register(model, model_uri, run_id, item.id)
        tracking.tag_version(model, version, source_tags(item.record or {}))
        tracking.finish_run(run_id, item.finished_at or item.updated_at)
        return version, run_id

    def _flavor(self, item: Any) -> ModelFlavor:
        return self.pipelines[item.pipeline].flavor

    def _tags(self, item: Any, outcome: TrainingOutcome) -> dict[str, str]:
        record = item.record or {}
        return {
            "conveyor.pipeline": f"{item.pipeline}@{item.pipeline_version}",
            "conveyor.code_version": outcome.code_version,
            "conveyor.dataset_sha256": outcome.dataset["sha256"],
            "conveyor.dataset_source": outcome.dataset["source"],
            "conveyor.trigger": str(record.get("trigger", "")),
            "conveyor.requested_by": str(record.get("requested_by", "")),
            "mlflow.source.git.commit": outcome.code_version.removeprefix("git:")[:40],
        } | source_tags(record)

    def _local_artifacts(self, work_dir: str, outcome: TrainingOutcome, folder: Path) -> dict:
        files = {}
        for key, name in outcome.artifacts.items():
            local = self.storage.local_path(work_dir, name)
            if local is None:
                local = folder / name
                self.storage.download(work_dir, name, local)
            files[key] = local
        return files

    def _gate(
        self, item: Any, outcome: TrainingOutcome, files: dict, champion: int | None
    ) -> Decision:
        rule = self.rule_for(item.pipeline, outcome.model)
        delivery = delivery_of(item.record)
        if delivery is not None:  # a delivered commit: its gate, and the canary promotes
            rule = gate_rule(delivery, rule.metric)
            decision = self._gate_with(item, outcome, files, champion, rule)
            return delivered_decision(decision, outcome.heldout, delivery, rule)
        return self._gate_with(item, outcome, files, champion, rule)

    def _gate_with(
        self, item: Any, outcome: TrainingOutcome, files: dict, champion: int | None, rule: GateRule
    ) -> Decision:
        if champion is None:
            return decide(outcome.heldout, None, rule)
        try:
            scores = self._flavor(item).score(self.tracking, champion, files, outcome)
        except Exception as error:  # e.g. a champion trained on other features
            logger.warning("could not score champion v%s: %r", champion, error)
            return Decision(
                CHALLENGER,
                f"champion v{champion} could not be scored on this run's held-out rows "
                f"({error}); not promoted automatically",
            )
        return decide(outcome.heldout, scores, rule, champion)

    def rule_for(self, pipeline: str, model: str) -> GateRule:
        """The model's settings, else the pipeline's metric with no margin."""
        configured = self.settings.models.get(model)
        default_metric = self.pipelines[pipeline].promotion_metric
        if configured is None:
            return GateRule(default_metric)
        return GateRule(configured.promotion_metric or default_metric, configured.promotion_margin)

    def _change_for(self, model: str, decision: Decision, version: int) -> AliasChange:
        before = self._current(model).get(decision.alias)
        action = PROMOTE if decision.promoted else CHALLENGE
        return AliasChange(decision.alias, before, version, action)

    def _current(self, model: str, session: Session | None = None) -> dict[str, int]:
        if session is not None:
            return current_aliases(history.as_changes(history.alias_history(session, model)))
        with self.sessions() as own:
            return self._current(model, own)

    def sync_aliases(self, model: str) -> None:
        """Make MLflow's aliases of ``model`` what Conveyor's alias history says they are."""
        wanted = self._current(model)
        actual = self.tracking.aliases(model)
        for alias, version in wanted.items():
            if actual.get(alias) != version:
                self.tracking.set_alias(model, alias, version)
        for alias in set(actual) - set(wanted):
            if alias in (CHAMPION, CHALLENGER):
                self.tracking.delete_alias(model, alias)
