"""The application each ``conveyor serve`` worker process builds (uvicorn imports it by name,
so its settings come from the environment the command sets: ``CONVEYOR_HOME``, and
``CONVEYOR_AUTH_REQUIRED=false`` for ``--no-auth``). Serving's own log lines (a version loaded,
swapped or refused) are always shown.

It is the same application as ``conveyor up`` serves (API and UI, so feedback and routing work
on every replica), with the serving endpoints loaded before the first request is accepted.
"""

from __future__ import annotations

import gc
import logging
import os

from starlette.types import ASGIApp

from conveyor.settings import load_settings

LOG_LEVEL_VARIABLE = "CONVEYOR_SERVE_LOG_LEVEL"


def create_serving_app() -> ASGIApp:
    from conveyor.api.app import create_app
    from conveyor.api.middleware import outside
    from conveyor.api.routes.endpoints import serving_of
    from conveyor.installation import Installation

    level = os.environ.get(LOG_LEVEL_VARIABLE, "WARNING").upper()
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
    )
    logging.getLogger("conveyor").setLevel(min(logging.getLevelName(level), logging.INFO))
    installation = Installation(load_settings())
    app = create_app(installation)
    serving_of(app)  # loads the endpoints before the first request
    gc.freeze()  # what is loaded now lives as long as the process: keep it out of GC passes
    # The predict fast path (with the body limit and headers) also in front of FastAPI's own
    # wrapping (its telemetry check and Starlette's error middleware): about 25 µs less per
    # prediction.
    return outside(app)
