"""Model operations for one installation: train, register, roll back, inspect, export.

The CLI (and later the API) calls this; ``conveyor up`` calls :meth:`ModelOps.tick` in its loop
to register finished training runs and fire schedules and data triggers.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from conveyor.errors import (
    ConfigurationError,
    ConveyorError,
    InputRejectedError,
    InvalidStateError,
)
from conveyor.ingest.submit import Submission
from conveyor.installation import Installation
from conveyor.models import history, registration_process
from conveyor.models.promotion import (
    CHAMPION,
    PROMOTE,
    ROLLBACK,
    AliasChange,
    current_aliases,
    rollback_target,
)
from conveyor.models.registration import CLAIM_STALE_SECONDS, Registrar, Registration
from conveyor.models.registry import ModelNotFoundError, ModelRegistry, VersionInfo
from conveyor.models.submission import submit_training, training_pipeline
from conveyor.models.training import TrainingPipeline
from conveyor.models.triggers import Triggers, latest_slot
from conveyor.store.models import ModelAliasChange, ModelRun, utcnow
from conveyor.store.outage_log import OutageLog

logger = logging.getLogger(__name__)
LOOP_SECONDS = 2.0


class ModelOps:
    """``register_in_child``: registration runs in a child process that exits afterwards
    (``models/registration_process.py``), so a long-lived process never loads MLflow."""

    def __init__(self, installation: Installation, register_in_child: bool = False) -> None:
        self.installation = installation
        self.settings = installation.settings
        self.register_in_child = register_in_child
        self.outage = OutageLog("model operations", LOOP_SECONDS, logger)

    @cached_property
    def tracking(self) -> ModelRegistry:
        settings = self.settings
        return ModelRegistry.for_home(
            settings.home, settings.mlflow_tracking_uri, settings.init_lock_timeout_seconds
        )

    @cached_property
    def registrar(self) -> Registrar:
        return Registrar(
            self.settings,
            self.installation.sessions,
            self.installation.storage,
            self.tracking,
            self.training_pipelines(),
        )

    @cached_property
    def triggers(self) -> Triggers:
        installation = self.installation
        return Triggers(
            self.settings, installation.sessions, installation.storage, installation.registry
        )

    def check_configuration(self) -> None:
        """Fail early, with the setting named, on a model or schedule that cannot work."""
        for model, configured in self.settings.models.items():
            try:
                self.pipeline(model)
            except ConveyorError as error:
                raise ConfigurationError(f"models.{model} in the settings: {error}") from error
            if configured.schedule:
                latest_slot(configured.schedule, utcnow())

    def tick(self, now: datetime | None = None) -> list[str]:
        """One round of the control loop: register finished runs, fire due triggers.

        Returns what happened, a line each; a failing part is logged and does not stop the
        others (an unreachable store once per outage)."""
        events: list[str] = []
        unreachable = False
        parts = (self._register_events, self._schedule_events, self._row_events, self._events)
        for part in parts:
            try:
                events += part(now)
            except Exception as error:
                failure = f"model operations: {part.__name__} failed"
                unreachable = self.outage.failed(error, failure) or unreachable
        if not unreachable:
            self.outage.succeeded()
        return events

    def _register_events(self, now: datetime | None) -> list[str]:
        done = self.register_pending()
        return [f"registered {r.model} v{r.version} as {r.decision.alias}" for r in done]

    def _schedule_events(self, now: datetime | None) -> list[str]:
        return [f"schedule queued training {i}" for i in self.triggers.fire_schedules(now)]

    def _row_events(self, now: datetime | None) -> list[str]:
        return [f"new rows queued training {i}" for i in self.triggers.fire_row_triggers(now)]

    def _events(self, now: datetime | None) -> list[str]:
        return [f"event queued training {i}" for i in self.triggers.fire_event_triggers()]

    def training_pipelines(self) -> list[TrainingPipeline]:
        return [p for p in self.installation.registry if isinstance(p, TrainingPipeline)]

    def pipeline(self, model: str) -> TrainingPipeline:
        return training_pipeline(self.installation.registry, model)

    def train(
        self,
        model: str,
        params: Mapping[str, Any] | None = None,
        trigger: str = "cli",
        requested_by: str | None = None,
    ) -> Submission:
        return submit_training(
            self.settings, self.installation.submitter, model, params, trigger, requested_by
        )

    def register_pending(self) -> list[Registration]:
        names = [p.name for p in self.training_pipelines()]
        stale = history.stale_cutoff(CLAIM_STALE_SECONDS)
        with self.installation.sessions() as session:  # cheap check before MLflow is touched
            if not history.unregistered_items(session, names, stale, limit=1):
                return []
        if self.register_in_child:
            return registration_process.register_in_child(self.settings)
        return self.registrar.register_pending()

    def registration(self, item_id: str) -> ModelRun | None:
        with self.installation.sessions() as session:
            return history.registration_of(session, item_id)

    def history(self, model: str) -> list[ModelAliasChange]:
        with self.installation.sessions() as session:
            return history.alias_history(session, model)

    def rollback(self, model: str, actor: str, reason: str) -> AliasChange:
        """Give ``champion`` back to the version that held it before the current one."""
        with self.installation.sessions.begin() as session:
            changes = history.as_changes(history.alias_history(session, model))
            current, previous = rollback_target(changes)
            change = AliasChange(CHAMPION, current, previous, ROLLBACK)
            history.record_change(session, model, change, actor, reason)
        self.registrar.sync_aliases(model)
        return change

    def promote(self, model: str, version: int, actor: str, reason: str) -> AliasChange:
        """Make ``version`` the champion by hand (it must exist), recorded like the gate's."""
        self.tracking.version(model, version)
        with self.installation.sessions.begin() as session:
            current = current_aliases(history.as_changes(history.alias_history(session, model)))
            if current.get(CHAMPION) == version:
                raise InvalidStateError(f"{model} v{version} is already the champion.")
            change = AliasChange(CHAMPION, current.get(CHAMPION), version, PROMOTE)
            history.record_change(session, model, change, actor, reason)
        self.registrar.sync_aliases(model)
        return change

    def versions(self, model: str) -> list[VersionInfo]:
        return self.tracking.versions(model)

    def resolve_version(self, model: str, version: int | None, alias: str | None) -> int:
        if version is not None:
            return version
        aliases = self.tracking.aliases(model)
        wanted = alias or CHAMPION
        if wanted not in aliases:
            raise ModelNotFoundError(
                f"model {model!r} has no alias {wanted!r} (aliases: "
                f"{', '.join(f'{a}=v{v}' for a, v in aliases.items()) or 'none'})."
            )
        return aliases[wanted]

    def export_onnx(
        self, model: str, target: Path, version: int | None = None, alias: str | None = None
    ) -> int:
        """Write a version's ONNX file (default: the champion) to ``target``."""
        chosen = self.resolve_version(model, version, alias)
        info = self.tracking.version(model, chosen)
        if not info.run_id:
            raise ModelNotFoundError(f"{model} v{chosen} has no MLflow run to export from.")
        with tempfile.TemporaryDirectory(prefix="conveyor-export-") as folder:
            try:
                path = self.tracking.download(info.run_id, "onnx/model.onnx", Path(folder))
            except Exception as error:
                reason = info.params.get("onnx_skipped_reason", "it was not converted")
                raise OnnxExportMissingError(
                    f"{model} v{chosen} has no ONNX export ({reason}); choose another "
                    f"version with --version."
                ) from error
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return chosen


class OnnxExportMissingError(InputRejectedError):
    code = "not_found"
    http_status = 404  # the version has no ONNX file to send


def start_loop(installation: Installation, stop: threading.Event) -> threading.Thread:
    """Run :meth:`ModelOps.tick` every few seconds until ``stop`` is set (``conveyor up``),
    registering in a child process: this one lives long."""
    ops = ModelOps(installation, register_in_child=True)
    ops.check_configuration()

    def loop() -> None:
        while not stop.wait(LOOP_SECONDS):
            for event in ops.tick():
                logger.info("model operations: %s", event)

    thread = threading.Thread(target=loop, name="conveyor-models", daemon=True)
    thread.start()
    return thread
