"""Error cases of every route that a client gets wrong: unknown ids, oversized records, bad
parameters (including the ones fuzzing found), wrong methods; and the API under a sub-path."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app

UNKNOWN = "ffffffffffff"
ITEM_ROUTES = [
    ("GET", "/api/v1/items/{id}"),
    ("GET", "/api/v1/items/{id}/result"),
    ("GET", "/api/v1/items/{id}/artifacts/words.txt"),
    ("POST", "/api/v1/items/{id}/cancel"),
    ("POST", "/api/v1/items/{id}/retry"),
]


@pytest.mark.parametrize(("method", "path"), ITEM_ROUTES)
def test_unknown_ids_are_404_on_every_item_route(api, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    response = api.request(method, path.format(id=UNKNOWN))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and f"no item with id '{UNKNOWN}'" in error["message"]


def test_unknown_results_artifacts_and_states(api) -> None:  # type: ignore[no-untyped-def]
    item_id = api.post("/api/v1/items", json={"pipeline": "noop", "record": 1}).json()["item_id"]
    no_result = api.get(f"/api/v1/items/{item_id}/result")
    assert no_result.status_code == 404 and no_result.json()["error"]["code"] == "no_result"
    for path in ("nope.txt", "../../conveyor.db", "..%2F..%2Fconveyor.db"):
        assert api.get(f"/api/v1/items/{item_id}/artifacts/{path}").status_code == 404, path
    retry = api.post(f"/api/v1/items/{item_id}/retry")
    assert (
        retry.status_code == 409 and "only failed or cancelled" in retry.json()["error"]["message"]
    )
    unknown = api.post("/api/v1/items/retry-failed", json={"pipeline": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_pipeline"


def test_a_record_over_one_mib_is_413(api) -> None:  # type: ignore[no-untyped-def]
    big = '{"pipeline": "noop", "record": "' + "x" * (1 << 20) + '"}'
    response = api.post("/api/v1/items", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"

    def chunked():  # type: ignore[no-untyped-def]  # no Content-Length: the count stops it
        yield b'{"pipeline": "noop", "record": "'
        for _ in range(64):
            yield b"x" * 65536
        yield b'"}'

    streamed = api.post(
        "/api/v1/items", content=chunked(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert api.get("/api/v1/items").json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "/api/v1/items", '{"pipeline": "noop", "record": 1e400}', "must be finite"),
        ("POST", "/api/v1/items", '{"pipeline": "noop", "record": 1, "x": 2}', "x"),
        ("GET", "/api/v1/items/a%00b", None, "NUL character"),
        ("GET", "/api/v1/items?q=a%00b", None, "NUL character"),
        ("GET", "/api/v1/results?pipeline=noop&status=%00", None, "NUL character"),
        ("GET", "/api/v1/items?created_after=9999-12-31T23:59:59-14:00", None, "out of range"),
        (
            "GET",
            "/api/v1/results?pipeline=noop&created_before=0001-01-01T00:00%2B14:00",
            None,
            "out of range",
        ),
        ("GET", "/api/v1/items?limit=0", None, "query.limit"),
        ("GET", "/api/v1/items?limit=99999999999999999999999", None, "query.limit"),
        ("GET", "/api/v1/results?pipeline=noop&format=xml", None, "query.format"),
        ("POST", "/api/v1/auth/login", '{"name": "a\\u0000", "password": "x"}', "wrong user name"),
    ],
)
def test_bad_parameters_are_4xx_with_a_clear_message(  # type: ignore[no-untyped-def]
    api, method: str, path: str, body: str | None, message: str
) -> None:
    headers = {"Content-Type": "application/json"} if body else {}
    response = api.request(method, path, content=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert message in str(response.json()["error"])


@pytest.mark.parametrize("raw", [b"2020-01-01T00:00:00|a\x00b", b"2020-01-01T00:00:00+02:00|abc"])
def test_forged_cursors_are_refused(api, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    cursor = base64.urlsafe_b64encode(raw).decode()
    response = api.get("/api/v1/items", params={"cursor": cursor})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_cursor"


def test_wrong_methods_and_unknown_routes_have_the_error_body(api) -> None:  # type: ignore[no-untyped-def]
    wrong = api.delete("/api/v1/items")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    missing = api.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_the_api_is_served_under_a_root_path(installation) -> None:  # type: ignore[no-untyped-def]
    app = create_app(installation, auth_required=False, root_path="/conveyor")
    client = TestClient(app, root_path="/conveyor")
    created = client.post("/conveyor/api/v1/items", json={"pipeline": "noop", "record": 1})
    assert created.status_code == 201
    url = created.json()["url"]
    assert url == f"http://testserver/conveyor/api/v1/items/{created.json()['item_id']}"
    assert client.get(url).json()["status"] == "queued"
    listed = client.get("/conveyor/api/v1/items").json()["items"]
    assert [i["item_id"] for i in listed] == [created.json()["item_id"]]
    assert "/api/v1/items" in client.get("/conveyor/api/openapi.json").json()["paths"]
