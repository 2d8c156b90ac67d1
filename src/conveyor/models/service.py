"""Model operations for one installation: train, register, roll back, inspect, export.

The CLI (and later the API) calls this; ``conveyor up`` calls :meth:`ModelOps.tick` in its loop
to register finished training runs and fire schedules and data triggers.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from conveyor.errors import InputRejectedError
from conveyor.ingest.submit import Submission
from conveyor.installation import Installation
from conveyor.models import history
from conveyor.models.promotion import CHAMPION, ROLLBACK, AliasChange, rollback_target
from conveyor.models.registration import Registrar, Registration
from conveyor.models.registry import ModelNotFoundError, ModelRegistry, VersionInfo
from conveyor.models.submission import submit_training, training_pipeline
from conveyor.models.training import TrainingPipeline
from conveyor.store.models import ModelAliasChange, ModelRun


class ModelOps:
    def __init__(self, installation: Installation) -> None:
        self.installation = installation
        self.settings = installation.settings

    @cached_property
    def tracking(self) -> ModelRegistry:
        return ModelRegistry.for_home(self.settings.home, self.settings.mlflow_tracking_uri)

    @cached_property
    def registrar(self) -> Registrar:
        return Registrar(
            self.settings,
            self.installation.sessions,
            self.installation.storage,
            self.tracking,
            self.training_pipelines(),
        )

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
        extra_rows: Sequence[Sequence[str]] = (),
    ) -> Submission:
        return submit_training(
            self.settings,
            self.installation.submitter,
            model,
            params,
            trigger,
            requested_by,
            extra_rows,
        )

    def register_pending(self) -> list[Registration]:
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
