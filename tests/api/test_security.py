"""Who may do what: 401 without credentials, 403 for viewers on every state-changing route,
CSRF on session cookies, and cookie attributes (also under a sub-path)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app

PASSWORD = "correct horse battery"
READS = [
    "/api/v1/items",
    "/api/v1/items/ffffffffffff",
    "/api/v1/items/ffffffffffff/result",
    "/api/v1/items/ffffffffffff/artifacts/a.txt",
    "/api/v1/results?pipeline=noop",
    "/api/v1/inbox",
    "/api/v1/stats",
    "/api/v1/workers",
    "/api/v1/pipelines",
    "/api/v1/auth/me",
]
WRITES = [
    ("/api/v1/items", {"json": {"pipeline": "noop", "record": {"n": 1}}}),
    ("/api/v1/items", {"files": {"file": ("a.txt", b"a")}, "data": {"pipeline": "text_stats"}}),
    ("/api/v1/items/{item_id}/cancel", {}),
    ("/api/v1/items/{item_id}/retry", {}),
    ("/api/v1/items/retry-failed", {"json": {}}),
    ("/api/v1/inbox/scan", {}),
]


def _queued_item(api: TestClient) -> str:
    created = api.post("/api/v1/items", json={"pipeline": "noop", "record": {"n": 0}})
    return created.json()["item_id"]


@pytest.mark.parametrize("path", READS)
def test_every_route_needs_credentials(api, path: str) -> None:  # type: ignore[no-untyped-def]
    anonymous = TestClient(api.app)
    response = anonymous.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    basic = anonymous.get(path, headers={"Authorization": "Basic YWRhOnB3"})
    assert basic.status_code == 401 and "Bearer" in basic.json()["error"]["message"]


def test_viewers_read_everything_and_change_nothing(api) -> None:  # type: ignore[no-untyped-def]
    item_id = _queued_item(api)
    api.installation.storage.put_in_inbox("w.csv", b"a\n1\n", "csv_profile")
    viewer = TestClient(api.app, headers={"Authorization": f"Bearer {api.viewer_token}"})
    for path in READS:
        assert viewer.get(path).status_code in (200, 404), path
    for path, body in WRITES:
        response = viewer.post(path.format(item_id=item_id), **body)
        assert response.status_code == 403, path
        error = response.json()["error"]
        assert error["code"] == "forbidden" and "needs the operator role" in error["message"]
    assert api.get("/api/v1/stats").json()["counts"] == {"noop": {"queued": 1}}
    assert len(api.get("/api/v1/inbox").json()["files"]) == 1


def _log_in(client: TestClient, name: str = "ada", root: str = ""):  # type: ignore[no-untyped-def]
    return client.post(f"{root}/api/v1/auth/login", json={"name": name, "password": PASSWORD})


def test_sessions_need_the_csrf_header_to_change_anything(api) -> None:  # type: ignore[no-untyped-def]
    browser = TestClient(api.app)
    csrf = _log_in(browser).json()["csrf_token"]
    assert browser.get("/api/v1/items").status_code == 200
    record = {"pipeline": "noop", "record": {"n": 1}}
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        refused = browser.post("/api/v1/items", json=record, headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    item_id = browser.post("/api/v1/items", json=record, headers={"X-CSRF-Token": csrf}).json()
    cancel = f"/api/v1/items/{item_id['item_id']}/cancel"
    assert browser.post(cancel).status_code == 403
    assert browser.post(cancel, headers={"X-CSRF-Token": csrf}).json()["status"] == "cancelled"
    assert browser.post("/api/v1/auth/logout").status_code == 204
    assert browser.get("/api/v1/items").status_code == 401


def test_a_viewer_session_is_a_viewer(api) -> None:  # type: ignore[no-untyped-def]
    browser = TestClient(api.app)
    me = _log_in(browser, "vic").json()
    assert me["role"] == "viewer"
    refused = browser.post(
        "/api/v1/items",
        json={"pipeline": "noop", "record": 1},
        headers={"X-CSRF-Token": me["csrf_token"]},
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


def test_cookie_is_httponly_strict_and_scoped_to_the_root_path(installation) -> None:  # type: ignore[no-untyped-def]
    from conveyor.auth.service import add_user

    with installation.sessions.begin() as session:
        add_user(session, "ada", PASSWORD, "admin")
    app = create_app(installation, auth_required=True, root_path="/conveyor")
    browser = TestClient(app, root_path="/conveyor")
    response = _log_in(browser, root="/conveyor")
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/conveyor" in cookie
    assert browser.get("/conveyor/api/v1/auth/me").json()["name"] == "ada"


def test_without_auth_everyone_is_an_anonymous_admin(installation) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(installation, auth_required=False))
    assert client.get("/api/v1/auth/me").json()["role"] == "admin"
    record = {"pipeline": "noop", "record": 1}
    assert client.post("/api/v1/items", json=record).status_code == 201
