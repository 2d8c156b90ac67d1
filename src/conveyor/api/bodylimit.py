"""A limit on request bodies, counted as they stream in: a body declared larger than the limit
is refused before any of it is read, and one that grows past it is cut off there, so no route
(the anonymous login included) ever holds more than the limit in memory.

Streamed file uploads (multipart ``POST /api/v1/items``) get ``max_upload_bytes``: their
parser writes to storage as bytes arrive. Everything else gets ``max_request_body_bytes``.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.api.uploads import MULTIPART_OVERHEAD

UPLOAD_PATH = "/api/v1/items"
APPLIED = "conveyor.body_limit"  # scope key: the limit is already enforced further out


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(APPLIED):
            await self.app(scope, receive, send)
            return
        scope[APPLIED] = True
        limit, setting = self._limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await send_too_large(send, limit, setting)
            return
        guard = _Guard(receive, send, limit, setting)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if not guard.refused:  # after a refusal the app only sees a disconnected client
                raise

    def _limit(self, scope: Scope) -> tuple[int, str]:
        if _is_upload(scope):
            return self.max_upload_bytes + MULTIPART_OVERHEAD, "max_upload_bytes"
        return self.max_body_bytes, "max_request_body_bytes"


class _Guard:
    """Counts the body on its way to the app; past the limit it answers 413 itself, tells the
    app the client left, and drops whatever the app still tries to send."""

    def __init__(self, receive: Receive, send: Send, limit: int, setting: str) -> None:
        self._receive, self._send = receive, send
        self.limit, self.setting = limit, setting
        self.received = 0
        self.started = False
        self.refused = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refused = True
                if not self.started:
                    await send_too_large(self._send, self.limit, self.setting)
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


async def send_too_large(send: Send, limit: int, setting: str) -> None:
    body = _error(
        "too_large",
        f"the request body is larger than the limit of {limit} bytes; send less or raise {setting}",
        {"limit_bytes": limit, "setting": setting},
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error(code: str, message: str, details: Any) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "details": details}})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _is_upload(scope: Scope) -> bool:
    if scope["method"] != "POST":
        return False
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if path.rstrip("/") != UPLOAD_PATH:
        return False
    content_type = next((v for n, v in scope["headers"] if n == b"content-type"), b"")
    return content_type.lower().startswith(b"multipart/form-data")
