"""The model registry seam: MLflow tracking and model registry behind one small class.

Embedded, MLflow keeps runs and the registry in ``<home>/mlflow/mlflow.db`` (SQLite) and
artifacts in ``<home>/mlflow/artifacts``; in a cluster, set ``mlflow_tracking_uri`` to an MLflow
server (backed by PostgreSQL) and every process talks to it. Only the control side uses this
class (``conveyor up``, the CLI, the API); Ray steps never do, so workers need no MLflow access.

Idempotency: runs and versions carry the tag ``conveyor.item_id`` of the training item that
produced them, so registering the same item again finds them instead of making duplicates.
Aliases set here mirror Conveyor's own alias history (``models/history.py``), which is the
record of who moved an alias, when and why.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.filemodes import private_sqlite_database
from conveyor.firstuse import DEFAULT_TIMEOUT_SECONDS
from conveyor.models.tracking_store import prepare_tracking_store

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network here; no usage pings

ITEM_TAG = "conveyor.item_id"
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
LOGGED_MODEL_URI = re.compile(r"models:/(m-[0-9a-f]+)")  # what log_model returns (MLflow 3)
_FLUENT_LOCK = threading.Lock()  # mlflow.sklearn.log_model uses process-global tracking state


class ModelNotFoundError(ConveyorError):
    code = "not_found"
    http_status = 404


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    run_id: str | None
    created_at: datetime
    aliases: tuple[str, ...]
    tags: Mapping[str, str]
    metrics: Mapping[str, float]
    params: Mapping[str, str]


def embedded_tracking_uri(home: Path) -> str:
    return f"sqlite:///{(home / 'mlflow' / 'mlflow.db').resolve()}"


class ModelRegistry:
    """Runs, versions and aliases of models; ``artifact_root`` applies to new experiments."""

    def __init__(
        self,
        tracking_uri: str,
        artifact_root: str | None = None,
        init_timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        from mlflow import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # not every table it migrates
        if tracking_uri.startswith("sqlite:///"):
            database = Path(tracking_uri.removeprefix("sqlite:///"))
            database.parent.mkdir(parents=True, exist_ok=True)
            private_sqlite_database(database)
        prepare_tracking_store(tracking_uri, artifact_root, init_timeout)
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @classmethod
    def for_home(
        cls, home: Path, tracking_uri: str | None, init_timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> ModelRegistry:
        if tracking_uri:
            return cls(tracking_uri, init_timeout=init_timeout)
        artifacts = (home / "mlflow" / "artifacts").resolve()
        return cls(embedded_tracking_uri(home), artifacts.as_uri(), init_timeout)

    # -- runs ---------------------------------------------------------------------------------

    def experiment_id(self, model: str) -> str:
        found = self.client.get_experiment_by_name(model)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(model, artifact_location=self._artifacts(model))

    def _artifacts(self, model: str) -> str | None:
        return f"{self.artifact_root}/{model}" if self.artifact_root else None

    def find_run(self, model: str, item_id: str) -> str | None:
        checked_name(model)
        runs = self.client.search_runs(
            [self.experiment_id(model)], f"tags.`{ITEM_TAG}` = '{item_id}'", max_results=1
        )
        return runs[0].info.run_id if runs else None

    def start_run(
        self, model: str, item_id: str, tags: Mapping[str, str], started: datetime
    ) -> str:
        run = self.client.create_run(
            self.experiment_id(model),
            start_time=_millis(started),
            tags={ITEM_TAG: item_id, **tags},
            run_name=f"{model}-{item_id[:8]}",
        )
        return run.info.run_id

    def log_values(
        self, run_id: str, params: Mapping[str, str], metrics: Mapping[str, float]
    ) -> None:
        from mlflow.entities import Metric, Param

        now = _millis(datetime.now(UTC))
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        )

    def tag_run(self, run_id: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)

    def tag_version(self, model: str, version: int, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model, str(version), key, value)

    def log_sklearn_model(
        self, run_id: str, model: Any, input_example: Any, requirements: list[str]
    ) -> str:
        """Log a scikit-learn model with its signature and input example; returns its URI."""
        import mlflow
        from mlflow.models import infer_signature

        signature = infer_signature(input_example, model.predict(input_example))
        with _FLUENT_LOCK:
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
            with mlflow.start_run(run_id=run_id, log_system_metrics=False):
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    signature=signature,
                    input_example=input_example,
                    pip_requirements=requirements,
                    skops_trusted_types=_trusted_types(model),
                )
        return info.model_uri

    def log_python_model(
        self,
        run_id: str,
        python_model: Any,
        artifacts: Mapping[str, str],
        input_example: Any,
        output_example: Any,
        requirements: list[str],
    ) -> str:
        """Log an ``mlflow.pyfunc.PythonModel`` with its files; returns its model URI."""
        import mlflow
        from mlflow.models import infer_signature

        with _FLUENT_LOCK:
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
            with (
                mlflow.start_run(run_id=run_id, log_system_metrics=False),
                warnings.catch_warnings(),
            ):
                warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=python_model,
                    artifacts=dict(artifacts),
                    signature=infer_signature(input_example, output_example),
                    input_example=input_example,
                    pip_requirements=requirements,
                )
        return info.model_uri

    def load_python_model(self, model: str, version: int) -> Any:
        """The ``PythonModel`` object of a version, with its context loaded."""
        import mlflow

        with _FLUENT_LOCK:
            mlflow.set_registry_uri(self.tracking_uri)
            mlflow.set_tracking_uri(self.tracking_uri)
            loaded = mlflow.pyfunc.load_model(f"models:/{model}/{version}")
        return loaded.unwrap_python_model()

    def log_file(self, run_id: str, local_path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(local_path), folder)

    def finish_run(self, run_id: str, finished: datetime, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status, end_time=_millis(finished))

    def download(self, run_id: str, path: str, target_folder: Path) -> Path:
        target_folder.mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(run_id, path, str(target_folder)))

    # -- registry -----------------------------------------------------------------------------

    def register(self, model: str, model_uri: str, run_id: str, item_id: str) -> int:
        """Register ``model_uri`` as a new version, or return the version already made for
        ``item_id``."""
        from mlflow.exceptions import MlflowException

        existing = self.find_version(model, item_id)
        if existing is not None:
            return existing
        try:
            self.client.create_registered_model(model)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = self.client.create_model_version(
            model, model_uri, run_id=run_id, tags={ITEM_TAG: item_id}, model_id=_model_id(model_uri)
        )
        return int(version.version)

    def find_version(self, model: str, item_id: str) -> int | None:
        checked_name(model)
        found = self.client.search_model_versions(
            f"name = '{model}' and tags.`{ITEM_TAG}` = '{item_id}'"
        )
        return int(found[0].version) if found else None

    def set_alias(self, model: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(model, alias, str(version))

    def delete_alias(self, model: str, alias: str) -> None:
        self.client.delete_registered_model_alias(model, alias)

    def aliases(self, model: str) -> dict[str, int]:
        registered = self._registered(model)
        return {alias: int(version) for alias, version in registered.aliases.items()}

    def _registered(self, model: str) -> Any:
        from mlflow.exceptions import MlflowException

        checked_name(model)
        try:
            return self.client.get_registered_model(model)
        except MlflowException as error:
            raise ModelNotFoundError(
                f"no registered model named {model!r}; train one with `conveyor train {model}`."
            ) from error

    def model_names(self) -> list[str]:
        return sorted(m.name for m in self.client.search_registered_models())

    def versions(self, model: str) -> list[VersionInfo]:
        """Every version, newest first, with its run's metrics and params."""
        aliases = self.aliases(model)  # checks the name; search results leave aliases out
        found = self.client.search_model_versions(f"name = '{model}'")
        infos = (self._info(v, aliases) for v in found)
        return sorted(infos, key=lambda info: info.version, reverse=True)

    def version(self, model: str, version: int) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.get_model_version(model, str(version))
            return self._info(found, self.aliases(model))
        except MlflowException as error:
            raise ModelNotFoundError(f"model {model!r} has no version {version}.") from error

    def _info(self, version: Any, aliases: Mapping[str, int]) -> VersionInfo:
        run = self.client.get_run(version.run_id) if version.run_id else None
        return VersionInfo(
            name=version.name,
            version=int(version.version),
            run_id=version.run_id,
            created_at=datetime.fromtimestamp(version.creation_timestamp / 1000, UTC).replace(
                tzinfo=None
            ),
            aliases=tuple(sorted(a for a, v in aliases.items() if v == int(version.version))),
            tags=dict(version.tags),
            metrics=dict(run.data.metrics) if run else {},
            params=dict(run.data.params) if run else {},
        )

    def model_info(self, model: str, version: int) -> Any:
        """MLflow's ``ModelInfo`` of a version: flavors, signature, input example."""
        import mlflow

        with _FLUENT_LOCK:
            mlflow.set_registry_uri(self.tracking_uri)
            mlflow.set_tracking_uri(self.tracking_uri)
            return mlflow.models.get_model_info(f"models:/{model}/{version}")

    def load_sklearn(self, model: str, version: int) -> Any:
        import mlflow

        with _FLUENT_LOCK:
            mlflow.set_registry_uri(self.tracking_uri)
            mlflow.set_tracking_uri(self.tracking_uri)
            return mlflow.sklearn.load_model(f"models:/{model}/{version}")


def _model_id(model_uri: str) -> str | None:
    """The logged model's id in ``models:/m-...``: a tracking server refuses the URI without it
    (a SQLite store does not check)."""
    found = LOGGED_MODEL_URI.fullmatch(model_uri)
    return found.group(1) if found else None


def checked_name(model: str) -> str:
    """Model names go into MLflow search filters: letters, digits, ``_ . -`` only."""
    if not MODEL_NAME.fullmatch(model):
        raise ModelNotFoundError(
            f"{model!r} is not a model name (letters, digits, '_', '.', '-'; at most 100)."
        )
    return model


def _trusted_types(model: Any) -> list[str]:
    """Types skops must be told to load: only scikit-learn's and numpy's own are accepted, so
    a model holding anything else fails here, at logging, rather than when it is served."""
    import skops.io

    found = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    return [name for name in found if name.split(".")[0] in ("sklearn", "numpy")]


def _millis(moment: datetime) -> int:
    """Milliseconds since the epoch; naive datetimes are UTC, as everywhere in Conveyor."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)
