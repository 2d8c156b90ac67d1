"""Security headers on every answer, uploaded files served so that a browser cannot run them,
and the body limit answering with the error body (issue 13, findings 1 and 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api.headers import DOCS_POLICY, PAGE_POLICY

PAGE = b"<html><body><script>fetch('/api/v1/auth/me')</script></body></html>"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Headers do not depend on the store: SQLite only."""
    return f"sqlite:///{tmp_path / 'conveyor.db'}"


def _assert_hardened(response, policy: str = PAGE_POLICY) -> None:  # type: ignore[no-untyped-def]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == policy


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/api/v1/items",
        "/healthz",
        "/static/app.js",
        "/static/pipelines/calls/call_player.js",
    ],
)
def test_pages_api_and_static_files_carry_the_headers(api, path: str) -> None:  # type: ignore[no-untyped-def]
    response = api.get(path)
    assert response.status_code == 200, response.text
    _assert_hardened(response)
    assert "frame-ancestors 'none'" in PAGE_POLICY and "script-src 'self';" in PAGE_POLICY


def test_errors_and_refused_bodies_carry_them_too(api) -> None:  # type: ignore[no-untyped-def]
    _assert_hardened(TestClient(api.app).get("/api/v1/items"))  # 401
    too_big = api.post(
        "/api/v1/auth/login", content=b"x" * (2 << 20), headers={"content-type": "application/json"}
    )
    assert too_big.status_code == 413
    error = too_big.json()["error"]
    assert error["code"] == "too_large" and "max_request_body_bytes" in error["message"]
    _assert_hardened(too_big)


def test_the_openapi_page_gets_its_own_policy(api) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/docs")
    assert response.status_code == 200
    _assert_hardened(response, DOCS_POLICY)


def _upload(api, name: str, content: bytes) -> str:  # type: ignore[no-untyped-def]
    response = api.post(
        "/api/v1/items", files={"file": (name, content)}, data={"pipeline": "text_stats"}
    )
    assert response.status_code == 201, response.text
    return response.json()["item_id"]


def test_an_uploaded_html_page_is_served_as_an_opaque_sandboxed_download(api) -> None:  # type: ignore[no-untyped-def]
    item_id = _upload(api, "page.html", PAGE)
    artifacts = api.get(f"/api/v1/items/{item_id}").json()["artifacts"]
    assert "page.html" in artifacts, artifacts
    response = api.get(f"/api/v1/items/{item_id}/artifacts/page.html")
    assert response.status_code == 200 and response.content == PAGE
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "served_as"),
    [("drawing.svg", "application/octet-stream"), ("notes.txt", "text/plain; charset=utf-8")],
)
def test_only_types_a_browser_cannot_run_keep_their_type(api, name: str, served_as: str) -> None:  # type: ignore[no-untyped-def]
    item_id = _upload(api, name, b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>")
    response = api.get(f"/api/v1/items/{item_id}/artifacts/{name}")
    assert response.headers["content-type"] == served_as
    assert response.headers["content-security-policy"].startswith("sandbox")
