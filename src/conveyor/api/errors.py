"""Every error leaves the API as {"error": {"code", "message", "details"}}.

A ``ConveyorError`` carries its own status, code and Retry-After (conveyor/errors.py), read
here by one handler: routes let errors rise instead of translating them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from conveyor.api.schemas import ErrorBody
from conveyor.errors import ConveyorError
from conveyor.store.availability import store_unavailable, unavailable_error

ERROR_DESCRIPTIONS = {
    401: "not logged in, or the API token is unknown or revoked",
    403: "the caller's role does not allow this, or a session request lacks its CSRF token",
    404: "no such item, pipeline or artifact",
    409: "the action does not apply to the item in its current state",
    413: "the upload or record is larger than the limit",
    415: "the request body is neither multipart/form-data nor application/json",
    422: "the request is not valid; details name each field and problem",
    429: "too many login attempts; try again later (Retry-After says when)",
    503: "a dependency (store or Ray) is not ready, or the server is busy or still starting "
    "(Retry-After says when to ask again)",
}


UNEXPECTED_ERROR = (
    "the server failed unexpectedly; nothing about the failure is shown here, operators find "
    "it in the server log"
)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses, all with the error body."""
    return {
        status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


class ApiError(ConveyorError):
    """An error of the HTTP layer itself (forbidden, CSRF, login limits), with its status and
    code given where it is raised; errors of the domain are ``ConveyorError`` subclasses."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = status
        self.code = code
        self.details = details
        self.headers = headers

    def http_headers(self) -> dict[str, str] | None:
        return self.headers


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(error: ConveyorError) -> JSONResponse:
    return JSONResponse(error.http_body(), error.http_status, headers=error.http_headers())


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConveyorError)
    async def _conveyor_error(_request: Request, error: ConveyorError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg")}
            for e in error.errors()
        ]
        fields = ", ".join(d["field"] for d in details)
        return JSONResponse(
            error_body("invalid_request", f"the request is not valid: check {fields}", details),
            422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(error.detail)), error.status_code, headers=error.headers
        )

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, error: DBAPIError) -> JSONResponse:
        # A store that is down or restarting: 503 with Retry-After (a load balancer's health
        # check takes the replica out meanwhile); any other database error is unexpected.
        if store_unavailable(error):
            return error_response(unavailable_error())
        raise error

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, _error: Exception) -> JSONResponse:
        # Starlette logs the traceback after this answer is sent; the client gets no detail
        # (the message of an unexpected error may name server paths, SQL or settings).
        return JSONResponse(error_body("internal_error", UNEXPECTED_ERROR), 500)
