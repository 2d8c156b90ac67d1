"""The predict route at the ASGI level: ``POST .../api/v1/endpoints/{name}/predict`` is
answered here, before FastAPI's routing, dependencies and middleware, which cost several
times the prediction itself. Everything else (and a predict call with a session cookie, which
needs the CSRF check) goes on to the application unchanged; the FastAPI route with the same
path documents the contract in OpenAPI and answers those calls.

A ``ConveyorError`` the handler raises is answered as the API's exception handler answers it:
its own status, error body and Retry-After (conveyor/errors.py).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.errors import ConveyorError
from conveyor.serving.inputs import MAX_BODY_BYTES

PREDICT_PATH = re.compile(r"/api/v1/endpoints/([A-Za-z0-9][A-Za-z0-9_.-]{0,99})/predict")
JSON_HEADERS = [(b"content-type", b"application/json")]

# (endpoint, body, request key, authorization header or None) -> the predictions' JSON body,
# or None when the request must take the ordinary route; raises ConveyorError to refuse.
Handler = Callable[[str, bytes, str | None, str | None], Awaitable[bytes | None]]


class PredictFastPath:
    def __init__(self, app: ASGIApp, handler: Handler) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = PREDICT_PATH.search(scope["path"])
        if match is None or match.end() != len(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        body = await _body(receive)
        key = headers.get(b"x-request-key") or _query_key(scope)
        authorization = headers.get(b"authorization")
        try:
            answered = await self.handler(
                match.group(1),
                body,
                key.decode("latin-1") if key else None,
                authorization.decode("latin-1") if authorization else None,
            )
        except ConveyorError as error:
            await _send_json(send, error.http_status, error_payload(error), error.http_headers())
            return
        if answered is None:  # e.g. a browser session: the ordinary route checks CSRF
            await self.app(scope, _replaying(body), send)
            return
        await _send_json(send, 200, answered)


async def _send_json(
    send: Send, status: int, payload: bytes, extra: dict[str, str] | None = None
) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def _query_key(scope: Scope) -> bytes | None:
    query: bytes = scope.get("query_string", b"")
    for part in query.split(b"&"):
        if part.startswith(b"key="):
            from urllib.parse import unquote_to_bytes

            return unquote_to_bytes(part[4:])
    return None


async def _body(receive: Receive) -> bytes:
    """The request body, cut just past the limit (the parser then refuses it as too large)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body") or size > MAX_BODY_BYTES:
            return b"".join(chunks)


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def error_payload(error: ConveyorError) -> bytes:
    return orjson.dumps(error.http_body())
