"""The one place where the API's middleware and their order are fixed. Outermost first:

1. ``SecurityHeaders`` (api/headers.py): outermost, so every answer gets the headers,
   including the 413 of the body limit and the predict fast path's answers.
2. ``BodySizeLimit`` (api/bodylimit.py): before anything reads a body, the predict fast path
   included, so no route can be made to hold more than the limit.
3. ``PredictFastPath`` (serving/fastpath.py): answers predict calls before FastAPI's routing.
4. ``RequestTimingMiddleware`` (api/metrics.py): times what FastAPI's routes answer.

The predict fast path's handler is ``app.state.predict_handler`` (api/routes/endpoints.py,
set by create_app); nothing else adds middleware or wraps the app.

``conveyor serve`` puts 1-3 once more in front of FastAPI's own wrapping (its error
middleware), which saves time per prediction (serving/app.py, via :func:`outside`); the inner
copies of 1 and 2 then see a mark in the request's scope and pass it on untouched.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from conveyor.api.bodylimit import BodySizeLimit
from conveyor.api.headers import SecurityHeaders
from conveyor.api.metrics import RequestTimingMiddleware
from conveyor.serving.fastpath import PredictFastPath
from conveyor.settings import Settings


def install_middleware(app: FastAPI) -> None:
    """Add the middleware to ``app`` (Starlette wraps the last added outermost)."""
    settings: Settings = app.state.installation.settings
    app.add_middleware(RequestTimingMiddleware, metrics=app.state.metrics)
    app.add_middleware(PredictFastPath, handler=app.state.predict_handler)
    app.add_middleware(
        BodySizeLimit,
        max_body_bytes=settings.max_request_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(SecurityHeaders)


def outside(app: FastAPI) -> ASGIApp:
    """``app`` with 1-3 in front of FastAPI's own wrapping (``conveyor serve``)."""
    settings: Settings = app.state.installation.settings
    fast = PredictFastPath(app, app.state.predict_handler)
    limited = BodySizeLimit(fast, settings.max_request_body_bytes, settings.max_upload_bytes)
    return SecurityHeaders(limited)
