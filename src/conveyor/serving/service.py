"""Serving in one process: deployments kept fresh by the reloader, the predict path, the
prediction log and the metrics, for the API routes to call.

The predict path is plain Python on bytes: orjson in and out, no pydantic, one routing
decision and one ONNX call per request; logging appends the rows to this process's journal on
local disk (one write() per request) and to an in-memory queue.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson

from conveyor.errors import ConveyorError
from conveyor.installation import Installation
from conveyor.models.registry import ModelRegistry
from conveyor.models.training import TrainingPipeline
from conveyor.pipeline.hooks import ServingDefaults
from conveyor.serving.endpoints import ensure_endpoints
from conveyor.serving.inputs import InvalidInputError, parse_records
from conveyor.serving.journal import Entry, PredictionJournal
from conveyor.serving.loops import CanaryGuard, quality_since, start_loops
from conveyor.serving.metrics import ServingMetrics, serving_metrics
from conveyor.serving.predictors import LoadedVersion, load_version
from conveyor.serving.predlog import PredictionLog
from conveyor.serving.quality import Proportion, quality_by
from conveyor.serving.reload import Deployment, Reloader
from conveyor.serving.routing import choose_arm
from conveyor.serving.spool import PredictionSpool
from conveyor.streams.event_sinks import write_predictions

logger = logging.getLogger(__name__)
FIRST_LOAD_SECONDS = 60.0
MAX_KEY_LENGTH = 200  # predictions.request_key


def checked_key(key: str | None) -> str | None:
    """A request key as the log can store it (PostgreSQL text refuses NUL)."""
    if key is None:
        return None
    if "\x00" in key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"the request key must be at most {MAX_KEY_LENGTH} characters without NUL.",
            [{"record": None, "field": "request key", "problem": "too long or contains NUL"}],
        )
    return key


class EndpointUnavailableError(ConveyorError):
    """The endpoint exists but has no loaded model version (none registered or none loads)."""

    code = "unavailable"
    http_status = 409


class UnknownEndpointError(ConveyorError):
    code = "not_found"
    http_status = 404


class ModelFailedError(ConveyorError):
    code = "model_failed"
    http_status = 500


@dataclass(frozen=True)
class Answer:
    body: bytes
    deployment: Deployment
    version: LoadedVersion
    arm: str
    outputs: list[Any]
    prediction_ids: list[str]


class ServingService:
    def __init__(self, installation: Installation, log_features: bool = True) -> None:
        self.installation = installation
        self.sessions = installation.sessions
        self.log_features = log_features
        self.metrics: ServingMetrics = serving_metrics(installation.metrics.registry)
        self.source = f"serving:{socket.gethostname()}:{os.getpid()}"
        spool_folder = installation.settings.home / "spool"
        self.log = PredictionLog(
            self.sessions,
            self._dropped,
            spool=PredictionSpool(spool_folder / "predictions"),
            outbox=write_predictions,
            journal=PredictionJournal(spool_folder / "journal"),
            on_unjournaled=self._unjournaled,
        )
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._first_load = threading.Event()
        self._children: dict[tuple[str, int, str], tuple[Any, Any]] = {}
        self.guard = CanaryGuard(self.sessions)  # auto-rollback's recent outcomes
        # Prediction ids: a random per-process prefix and a counter (unique across replicas
        # without a system call per prediction, which os.urandom and uuid4 make).
        self._id_prefix = os.urandom(8).hex()
        self._id_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    @cached_property
    def tracking(self) -> ModelRegistry:
        settings = self.installation.settings
        return ModelRegistry.for_home(
            settings.home, settings.mlflow_tracking_uri, settings.init_lock_timeout_seconds
        )

    @cached_property
    def reloader(self) -> Reloader:
        return Reloader(self.sessions, self.tracking, self.metrics, self.source, self._load)

    def _load(self, tracking: ModelRegistry, model: str, version: int) -> LoadedVersion:
        return load_version(tracking, model, version, self._nullable(model))

    def _nullable(self, model: str) -> frozenset[str]:
        """Fields the training schema allows to be missing (e.g. heart's ``ca``, ``thal``)."""
        trainer = self.installation.registry.trainer_of(model)
        schema = trainer.schema if isinstance(trainer, TrainingPipeline) else None
        if schema is None:
            return frozenset()
        return frozenset(c.name for c in schema.columns if c.missing_allowed)

    def default_models(self) -> list[str]:
        return self.installation.registry.model_names()

    def _serving_defaults(self, model: str) -> ServingDefaults:
        trainer = self.installation.registry.trainer_of(model)
        defaults = trainer.hooks.serving if trainer is not None else None
        return defaults or ServingDefaults()

    def default_key_fields(self) -> dict[str, str]:
        """The request key of each new endpoint, as its pipeline's serving defaults say."""
        keys = {model: self._serving_defaults(model).key_field for model in self.default_models()}
        return {model: key for model, key in keys.items() if key}

    def start(self) -> None:
        """Create the default endpoints, load what they serve, and keep it fresh. Blocks until
        the first load is done (in the caller's thread: MLflow migrates its store on first use
        and Alembic's migration context is process-global, so this never runs in the
        background of a request that has already returned); later calls return at once."""
        if self._first_load.is_set():
            return
        with self._start_lock:
            if self._first_load.is_set():
                return
            ensure_endpoints(self.sessions, self.default_models(), self.default_key_fields())
            self.log.start()
            try:
                self.reloader.refresh()
            finally:
                self._first_load.set()
            start_loops(self, self._stop)  # serving/loops.py

    @property
    def ready(self) -> bool:
        return self._first_load.is_set()

    def wait_ready(self) -> None:
        self.start()

    def quality_metric(self, endpoint: str) -> str:
        deployment = self.reloader.deployments.get(endpoint)
        model = deployment.wanted.model if deployment else endpoint
        return self._serving_defaults(model).quality

    def quality(
        self, endpoint: str, since: datetime, until: datetime | None = None, group: str = "version"
    ) -> dict[Any, Proportion]:
        """Online quality per version (or arm) of predictions made in [since, until)."""
        self.log.flush()
        with self.sessions() as session:
            return quality_by(session, endpoint, self.quality_metric(endpoint), since, until, group)

    def refresh(self) -> None:
        """Load what changed in the registry or the routing (the reload loop's work)."""
        self.reloader.refresh()

    def export_quality(self) -> None:
        """Set ``conveyor_serving_online_quality`` from the last hour's feedback."""
        since = quality_since()
        for endpoint in list(self.reloader.deployments):
            for version, proportion in self.quality(endpoint, since).items():
                if proportion.value is not None:
                    gauge = self.metrics.online_quality.labels(endpoint, str(version))
                    gauge.set(proportion.value)

    def close(self) -> None:
        self._stop.set()
        self.log.close()

    def deployment(self, name: str) -> Deployment:
        found = self.reloader.deployments.get(name)
        if found is None:
            if not self._first_load.is_set():
                self.start()
                found = self.reloader.deployments.get(name)
            if found is None:
                raise UnknownEndpointError(
                    f"no serving endpoint named {name!r}; see GET /api/v1/endpoints."
                )
        return found

    def predict(self, name: str, body: bytes, key: str | None = None) -> Answer:
        """Answer a predict request body; raises InvalidInputError (422) with fields named."""
        started = time.perf_counter()
        deployment = self.deployment(name)
        if not deployment.versions:
            raise EndpointUnavailableError(
                f"endpoint {name!r} has no model version to serve yet: register one of "
                f"{deployment.wanted.model!r} (conveyor train {deployment.wanted.model}) or "
                "fix its routing."
            )
        records = parse_records(body)
        key = checked_key(self._request_key(deployment, records, key))
        arm = choose_arm(deployment.routing, records[0], key)
        version = deployment.versions[arm.name]
        try:
            outputs = version.predict(records)
        except InvalidInputError as error:
            self._refused(deployment, version, arm.name, key, error, started, "422")
            raise
        except Exception as error:  # the model itself failed: a server error, counted
            logger.exception("serving %s: %s v%d failed", name, version.model, version.version)
            self._refused(deployment, version, arm.name, key, error, started, "500")
            self.guard.record(name, arm.name, time.perf_counter() - started, failed=True)
            raise ModelFailedError(
                f"{version.model} v{version.version} failed on this request "
                f"({type(error).__name__}); the error is logged."
            ) from error
        ids = [self._next_id() for _ in outputs]
        body_out = orjson.dumps(
            {
                "endpoint": name,
                "model": version.model,
                "version": version.version,
                "arm": arm.name,
                "predictions": [
                    {"id": i, **o} if isinstance(o, dict) else {"id": i, "output": o}
                    for i, o in zip(ids, outputs, strict=True)
                ],
            }
        )
        seconds = time.perf_counter() - started
        self._observe(name, version, "200", seconds)
        if deployment.routing.auto_rollback:
            self.guard.record(name, arm.name, seconds, failed=False)
        self._log(deployment, version, arm.name, key, records, outputs, ids, seconds)
        return Answer(body_out, deployment, version, arm.name, outputs, ids)

    def check_canaries(self) -> list[str]:
        """Give weight 0 to canary arms that breach the thresholds (``auto_rollback``)."""
        return self.guard.check(self.reloader.deployments)

    def _next_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"

    def _request_key(
        self, deployment: Deployment, records: list[dict[str, Any]], key: str | None
    ) -> str | None:
        field = deployment.routing.key_field
        if field is None:
            return key
        first = records[0]
        if key is None and field in first:
            key = str(first[field])
        version = next(iter(deployment.versions.values()))
        if field not in version.signature.names:
            for record in records:
                record.pop(field, None)
        return key

    def _observe(self, name: str, version: LoadedVersion, status: str, seconds: float) -> None:
        children = self._children.get((name, version.version, status))
        if children is None:  # labels() costs more than the observation; keep the children
            label = str(version.version)
            children = self._children[(name, version.version, status)] = (
                self.metrics.latency.labels(name, label),
                self.metrics.requests.labels(name, label, status),
            )
        children[0].observe(seconds)
        children[1].inc()

    def _log(
        self,
        deployment: Deployment,
        version: LoadedVersion,
        arm: str,
        key: str | None,
        records: list[dict[str, Any]],
        outputs: list[Any],
        ids: list[str],
        seconds: float,
    ) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        latency_ms = seconds * 1000
        capture = deployment.routing.capture_features
        entries: list[Entry] = []
        for prediction_id, record, output in zip(ids, records, outputs, strict=True):
            row = {
                "id": prediction_id,
                "ts": now,
                "endpoint": deployment.endpoint,
                "model": version.model,
                "version": version.version,
                "dataset_sha256": version.dataset_sha256,
                "features": record if self.log_features else None,
                "output": output,
                "latency_ms": latency_ms,
                "request_key": key,
                "arm": arm,
                "error": None,
            }
            captured = None
            if capture:
                captured = {
                    "endpoint": deployment.endpoint,
                    "model": version.model,
                    "prediction_id": prediction_id,
                    "features": record,
                    "captured_at": now,
                }
            entries.append((row, captured))
        self.log.add_all(entries)

    def _refused(
        self,
        deployment: Deployment,
        version: LoadedVersion,
        arm: str,
        key: str | None,
        error: Exception,
        started: float,
        status: str,
    ) -> None:
        seconds = time.perf_counter() - started
        self._observe(deployment.endpoint, version, status, seconds)
        self.log.add(
            {
                "id": self._next_id(),
                "ts": datetime.now(UTC).replace(tzinfo=None),
                "endpoint": deployment.endpoint,
                "model": version.model,
                "version": version.version,
                "dataset_sha256": version.dataset_sha256,
                "features": None,
                "output": None,
                "latency_ms": seconds * 1000,
                "request_key": key,
                "arm": arm,
                "error": str(error)[:2000],
            }
        )

    def _dropped(self, endpoint: str, rows: int) -> None:
        self.metrics.log_dropped.labels(endpoint).inc(rows)

    def _unjournaled(self, endpoint: str, rows: int) -> None:
        self.metrics.log_unjournaled.labels(endpoint).inc(rows)
