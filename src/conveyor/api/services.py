"""The composition root of one API app: every service its routes and web pages use is built
here, once, when :func:`conveyor.api.app.create_app` builds the app, and closed when the app
shuts down. Routes and pages read them from ``app.state``; none builds a service itself.

``app.state`` holds:

- ``installation``: settings, store, storage, pipelines (conveyor/installation.py);
- ``model_ops``: training, registration, promotion, export (models/service.py);
- ``serving``: the model endpoints (serving/service.py), built here and loaded on first use
  (``conveyor serve`` loads it before the first request);
- ``serving_tokens`` and ``predict_threads``: the predict path's bearer token cache and its
  worker threads;
- ``login_limits`` (attempts counted in the store, password checks per process) and
  ``metrics``; ``auth_required``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from conveyor.auth.limits import LoginLimits
from conveyor.installation import Installation
from conveyor.models.service import ModelOps
from conveyor.serving.offload import PredictThreads
from conveyor.serving.service import ServingService
from conveyor.serving.tokens import TokenCache


def install_services(app: FastAPI, installation: Installation, auth_required: bool) -> None:
    state = app.state
    state.installation = installation
    state.auth_required = auth_required
    state.login_limits = LoginLimits.from_settings(installation.settings, installation.sessions)
    state.metrics = installation.metrics
    state.model_ops = ModelOps(installation)
    state.serving = ServingService(installation)
    state.serving_tokens = TokenCache()
    state.predict_threads = PredictThreads()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Close the services on shutdown: serving stops its loops after a last log flush."""
    yield
    service: ServingService = app.state.serving
    await run_in_threadpool(service.close)
