"""What the client raises: one exception per kind of API answer, each carrying the API's error
``code``, ``message`` and ``details`` (the body is ``{"error": {"code", "message", "details"}}``).

They are part of Conveyor's one hierarchy (:class:`conveyor.errors.ConveyorError`), so
``except ConveyorError`` catches them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from conveyor.errors import ConveyorError


class ConveyorClientError(ConveyorError):
    """Base of everything :mod:`conveyor.client` raises."""

    code = "client_error"


class ConveyorConnectionError(ConveyorClientError):
    """The server could not be reached (refused, no route, DNS, TLS, or no answer in time)."""

    code = "connection_failed"

    def __init__(self, url: str, error: Exception) -> None:
        self.url = url
        if isinstance(error, httpx.TimeoutException) and not isinstance(
            error, httpx.ConnectTimeout
        ):
            super().__init__(
                f"Conveyor at {url} did not answer in time ({type(error).__name__}). The server "
                "may be overloaded; try again, or pass a larger timeout= to the client."
            )
            return
        super().__init__(
            f"could not reach Conveyor at {url} ({type(error).__name__}: {error}). Check that "
            "`conveyor up` runs there, the URL and port (argument or CONVEYOR_URL), and any "
            "proxy or firewall in between."
        )


class WaitTimeoutError(ConveyorClientError):
    """:meth:`Client.wait` gave up before every item reached a final state."""

    code = "wait_timeout"

    def __init__(self, seconds: float, unfinished: list[str]) -> None:
        self.unfinished = unfinished
        shown = ", ".join(unfinished[:5]) + (" ..." if len(unfinished) > 5 else "")
        super().__init__(
            f"{len(unfinished)} item(s) not finished after {seconds:g} s: {shown}. They keep "
            "running on the server; wait again, or look at them with client.item(ID)."
        )


@dataclass(frozen=True)
class FieldProblem:
    """One entry of a 422 answer's ``details``: which field (of which record, for a
    prediction), and what is wrong with it."""

    field: str
    problem: str
    record: int | None = None


class ConveyorAPIError(ConveyorClientError):
    """The API answered with an error status. ``status`` is the HTTP status, ``code`` the API's
    error code (e.g. ``not_found``), ``details`` whatever the API sent with it."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.method, self.url = details, method, url

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message} ({self.method} {self.url})"


class BadRequestError(ConveyorAPIError):
    """400, 405, 415 and other 4xx answers without a class of their own."""


class AuthenticationError(ConveyorAPIError):
    """401: no token, or an unknown, revoked or expired one (CONVEYOR_TOKEN)."""


class PermissionDeniedError(ConveyorAPIError):
    """403: the token's role does not allow this (the message names the role needed), or a
    temporary password must be changed first (``password_change_required``)."""


class NotFoundError(ConveyorAPIError):
    """404: no such item, pipeline, artifact, model, version or endpoint; ``no_result`` for an
    item without a result yet."""


class ConflictError(ConveyorAPIError):
    """409: the action does not apply in the current state (cancel a finished item, roll back
    with no earlier champion, predict on an endpoint with no version loaded)."""


class PayloadTooLargeError(ConveyorAPIError):
    """413: an upload, record or prediction body over the server's limit."""


class ValidationError(ConveyorAPIError):
    """422: the request was refused as invalid; :attr:`fields` lists each field and problem."""

    @property
    def fields(self) -> list[FieldProblem]:
        if not isinstance(self.details, list):
            return []
        return [
            FieldProblem(
                str(entry.get("field") or ""), str(entry.get("problem") or ""), entry.get("record")
            )
            for entry in self.details
            if isinstance(entry, dict)
        ]


class RetryableError(ConveyorAPIError):
    """An answer that may succeed later; :attr:`retry_after` is the server's hint in seconds."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class RateLimitedError(RetryableError):
    """429: too many attempts; try again after :attr:`retry_after` seconds."""


class UnavailableError(RetryableError):
    """503: the server or one of its dependencies (store, Ray) is busy or not ready."""


class ServerError(ConveyorAPIError):
    """5xx: the server failed; operators find the cause in its log."""


class GatewayError(RetryableError, ServerError):
    """502 or 504 from a load balancer in front of Conveyor: the replica that had the request
    died or did not answer. The request may or may not have been carried out; uploads and record
    submissions are deduplicated by content (unless forced), so sending them again is safe."""


ERRORS_BY_STATUS: dict[int, type[ConveyorAPIError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitedError,
    502: GatewayError,
    503: UnavailableError,
    504: GatewayError,
}


def error_class(status: int) -> type[ConveyorAPIError]:
    if status in ERRORS_BY_STATUS:
        return ERRORS_BY_STATUS[status]
    return ServerError if status >= 500 else BadRequestError


def _error_body(response: httpx.Response) -> tuple[str, str, Any]:
    """(code, message, details) from the API's error body, or from whatever else answered (a
    proxy's HTML page, an empty body)."""
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200]
        reason = response.reason_phrase or "error"
        return "http_error", text or f"HTTP {response.status_code} {reason}", None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def api_error(response: httpx.Response) -> ConveyorAPIError:
    """The typed exception for an error answer (its body must have been read)."""
    code, message, details = _error_body(response)
    cls = error_class(response.status_code)
    where = {"method": response.request.method, "url": str(response.request.url)}
    if issubclass(cls, RetryableError):
        return cls(
            response.status_code,
            code,
            message,
            details,
            retry_after=_retry_after(response),
            **where,
        )
    return cls(response.status_code, code, message, details, **where)


def raise_for_error(response: httpx.Response) -> httpx.Response:
    """``response`` when it succeeded, else its typed exception."""
    if response.is_error:
        raise api_error(response)
    return response
