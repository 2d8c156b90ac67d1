"""Error answers (real httpx responses, as the server or a proxy in front sends them) become the
right typed exception with the API's code, message, details and Retry-After."""

from __future__ import annotations

import httpx
import pytest

from conveyor.client import errors
from conveyor.errors import ConveyorError

REQUEST = httpx.Request("POST", "http://conveyor.test/api/v1/items")


def _answer(status: int, **options) -> errors.ConveyorAPIError:  # type: ignore[no-untyped-def]
    return errors.api_error(httpx.Response(status, request=REQUEST, **options))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (413, errors.PayloadTooLargeError),
        (415, errors.BadRequestError),
        (422, errors.ValidationError),
        (429, errors.RateLimitedError),
        (500, errors.ServerError),
        (502, errors.GatewayError),
        (503, errors.UnavailableError),
        (504, errors.GatewayError),
    ],
)
def test_each_status_has_its_exception(status: int, expected: type) -> None:
    body = {"error": {"code": "some_code", "message": "what went wrong", "details": None}}
    error = _answer(status, json=body)
    assert type(error) is expected and isinstance(error, ConveyorError)
    assert (error.status, error.code, error.message) == (status, "some_code", "what went wrong")
    assert str(error) == f"{status} some_code: what went wrong (POST {REQUEST.url})"


def test_field_details_and_retry_after() -> None:
    details = [{"field": "body.version", "problem": "Input should be greater than or equal to 1"}]
    body = {
        "error": {"code": "invalid_request", "message": "check body.version", "details": details}
    }
    invalid = _answer(422, json=body)
    assert isinstance(invalid, errors.ValidationError)
    assert invalid.fields == [errors.FieldProblem("body.version", details[0]["problem"])]
    limited = _answer(429, json=body | {}, headers={"Retry-After": "42"})
    assert isinstance(limited, errors.RateLimitedError) and limited.retry_after == 42.0
    assert _answer(503, json=body).retry_after is None  # type: ignore[attr-defined]
    gateway = _answer(502, json=body, headers={"Retry-After": "1"})
    assert isinstance(gateway, errors.ServerError)  # still a 5xx for code that catches those
    assert isinstance(gateway, errors.RetryableError) and gateway.retry_after == 1.0


def test_an_answer_without_the_error_body_still_says_what_came_back() -> None:
    proxy = _answer(502, text="<html><body>Bad Gateway</body></html>")
    assert proxy.code == "http_error" and "Bad Gateway" in proxy.message
    empty = _answer(504)
    assert empty.message == "HTTP 504 Gateway Timeout"
    assert errors.ValidationError(422, "x", "y", details={"not": "a list"}).fields == []


def test_connection_errors_say_what_to_check() -> None:
    url = "http://127.0.0.1:9"
    refused = errors.ConveyorConnectionError(url, httpx.ConnectError("Connection refused"))
    assert url in str(refused) and "CONVEYOR_URL" in str(refused)
    slow = errors.ConveyorConnectionError(url, httpx.ReadTimeout("timed out"))
    assert "did not answer in time" in str(slow) and "timeout=" in str(slow)
