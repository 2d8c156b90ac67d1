"""Timing API requests into the process's metrics (``conveyor_http_request_duration_seconds``).

The registry itself, and everything else it holds, lives in ``conveyor.monitoring``.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.monitoring import ConveyorMetrics


class RequestTimingMiddleware:
    """Times every request by its route template (low cardinality), not its raw path."""

    def __init__(self, app: ASGIApp, metrics: ConveyorMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.http_request_seconds.labels(
                route_template(scope), scope["method"], str(status["code"])
            ).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route's template with its router's prefix, e.g. /api/v1/items/{item_id}.

    The route of an included router knows only its own part ("/items/{item_id}"); the prefix
    is the part of the path before the piece that route matched."""
    route = scope.get("route")
    if route is None or not hasattr(route, "path_regex"):
        return "unmatched"
    template = str(route.path)
    path: str = scope.get("path", "")
    for index, character in enumerate(path):
        if character == "/" and route.path_regex.match(path[index:]):
            return path[:index] + template
    return template
