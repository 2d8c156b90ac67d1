"""Hot reload: a watcher polls the registry's aliases and the endpoints' routing revisions
about once a second, loads what changed fully off the request path, verifies it on the
version's input example, and only then swaps the endpoint's one ``Deployment`` reference.

A version that fails to load or verify is never swapped in: the arm keeps the version it
served before, the failure is counted (``conveyor_serving_reload_failures_total``), logged,
kept as a model event and retried after ``RETRY_SECONDS`` (a version being written may
become whole).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from conveyor.models.registry import ModelNotFoundError, ModelRegistry
from conveyor.serving.endpoints import EndpointRecord, read_endpoints, record_reload_failure
from conveyor.serving.metrics import ServingMetrics
from conveyor.serving.predictors import LoadedVersion, VersionLoadError, load_version
from conveyor.serving.routing import RoutingConfig

logger = logging.getLogger(__name__)
POLL_SECONDS = 1.0
RETRY_SECONDS = 30.0
Loader = Callable[[ModelRegistry, str, int], LoadedVersion]


@dataclass(frozen=True)
class Deployment:
    """What one endpoint serves right now; replaced whole, never changed in place."""

    endpoint: str
    revision: int
    wanted: RoutingConfig  # as configured
    routing: RoutingConfig  # the arms that have a loaded version
    targets: Mapping[str, int | None]  # arm -> version its target resolved to
    versions: Mapping[str, LoadedVersion]  # arm -> the version answering for it


def resolve_targets(config: RoutingConfig, aliases: Mapping[str, int]) -> dict[str, int | None]:
    return {
        arm.name: arm.target if isinstance(arm.target, int) else aliases.get(arm.target)
        for arm in config.arms
    }


class Reloader:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        tracking: ModelRegistry,
        metrics: ServingMetrics,
        source: str,
        loader: Loader = load_version,
    ) -> None:
        self.sessions = sessions
        self.tracking = tracking
        self.metrics = metrics
        self.source = source
        self.loader = loader
        self.deployments: dict[str, Deployment] = {}  # read by requests, replaced by refresh
        self._failed: dict[tuple[str, int], float] = {}  # (model, version) -> retry after
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """One polling round over every endpoint; a failing endpoint does not stop others."""
        with self._lock:
            with self.sessions() as session:
                records = read_endpoints(session)
            for name in set(self.deployments) - set(records):
                del self.deployments[name]
            for record in records.values():
                try:
                    self._refresh(record)
                except Exception:
                    logger.exception("serving: refreshing endpoint %s failed", record.name)

    def _refresh(self, record: EndpointRecord) -> None:
        model = record.config.model
        try:
            aliases = self.tracking.aliases(model)
        except ModelNotFoundError:
            aliases = {}
        targets = resolve_targets(record.config, aliases)
        current = self.deployments.get(record.name)
        if current is not None and not self._changed(current, record, targets):
            return
        versions = self._versions(record, targets, current)
        arms = tuple(a for a in record.config.arms if a.name in versions)
        rules = tuple(r for r in record.config.rules if r.arm in versions)
        routing = replace(record.config, arms=arms, rules=rules)
        self.deployments[record.name] = Deployment(
            record.name, record.revision, record.config, routing, targets, versions
        )
        self._export_live(record.name, current, versions)
        logger.info(
            "serving %s: %s",
            record.name,
            ", ".join(f"{a}=v{v.version}" for a, v in versions.items()) or "no version",
        )

    def _changed(
        self, current: Deployment, record: EndpointRecord, targets: Mapping[str, int | None]
    ) -> bool:
        if current.revision != record.revision or current.targets != targets:
            return True
        now = time.monotonic()
        model = record.config.model
        return any(
            self._failed.get((model, v), now + 1) <= now
            for arm, v in targets.items()
            if v is not None and (arm not in current.versions or current.versions[arm].version != v)
        )

    def _versions(
        self, record: EndpointRecord, targets: Mapping[str, int | None], current: Deployment | None
    ) -> dict[str, LoadedVersion]:
        versions: dict[str, LoadedVersion] = {}
        for arm, version in targets.items():
            loaded = self._loaded(record, version) if version is not None else None
            if loaded is None and current is not None and arm in current.versions:
                loaded = current.versions[arm]  # the old one keeps serving
            if loaded is not None:
                versions[arm] = loaded
        return versions

    def _loaded(self, record: EndpointRecord, version: int) -> LoadedVersion | None:
        model = record.config.model
        for deployment in self.deployments.values():
            for loaded in deployment.versions.values():
                if (loaded.model, loaded.version) == (model, version):
                    return loaded
        if self._failed.get((model, version), 0.0) > time.monotonic():
            return None
        try:
            loaded = self.loader(self.tracking, model, version)
        except VersionLoadError as error:
            self._failure(record.name, model, version, error)
            return None
        self._failed.pop((model, version), None)
        return loaded

    def _failure(self, endpoint: str, model: str, version: int, error: Exception) -> None:
        first = (model, version) not in self._failed
        self._failed[(model, version)] = time.monotonic() + RETRY_SECONDS
        logger.error("serving %s: %s v%d not swapped in: %s", endpoint, model, version, error)
        if not first:
            return
        self.metrics.reload_failures.labels(endpoint, str(version)).inc()
        payload: dict[str, Any] = {"endpoint": endpoint, "version": version, "error": str(error)}
        try:
            record_reload_failure(self.sessions, model, payload, self.source)
        except Exception:
            logger.exception("serving: could not record the reload failure")

    def _export_live(
        self, endpoint: str, before: Deployment | None, versions: Mapping[str, LoadedVersion]
    ) -> None:
        gauge = self.metrics.live_version
        served_before = {v.version for v in before.versions.values()} if before else set()
        for version in {v.version for v in versions.values()} - served_before:
            self.metrics.reloads.labels(endpoint, str(version)).inc()
        if before is not None:
            for arm, loaded in before.versions.items():
                with contextlib.suppress(KeyError):
                    gauge.remove(endpoint, arm, str(loaded.version))
        for arm, loaded in versions.items():
            gauge.labels(endpoint, arm, str(loaded.version)).set(1)
