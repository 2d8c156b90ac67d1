"""Security headers on every response: a Content Security Policy that allows only this
origin's scripts, no framing, no MIME sniffing. A route that sets its own (downloads set a
sandboxing policy) keeps it.

The web UI loads scripts only from ``/static`` and keeps data in ``<script
type="application/json">`` blocks, so ``script-src 'self'`` holds; styles allow
``'unsafe-inline'`` because the templates size bars with ``style`` attributes and htmx adds its
indicator ``<style>``. The OpenAPI page (``/api/docs``) is FastAPI's Swagger UI, which loads
from a CDN and starts with an inline script: it gets its own, wider policy.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SWAGGER_CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = (
    f"default-src 'self'; script-src 'self' 'unsafe-inline' {SWAGGER_CDN}; "
    f"style-src 'self' 'unsafe-inline' {SWAGGER_CDN}; img-src 'self' data: https:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
DOCS_PATH = "/api/docs"
COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
CSP = b"content-security-policy"
APPLIED = "conveyor.security_headers"  # scope key: added further out already


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.page = [*COMMON, (CSP, PAGE_POLICY.encode())]
        self.docs = [*COMMON, (CSP, DOCS_POLICY.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(APPLIED):
            await self.app(scope, receive, send)
            return
        scope[APPLIED] = True
        extra = self.docs if scope["path"].endswith(DOCS_PATH) else self.page

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
