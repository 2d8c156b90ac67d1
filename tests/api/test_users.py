"""/api/v1/users, /api/v1/tokens and /api/v1/auth/password (issue 13, finding 7): admins manage
accounts, every change ends the affected sessions, a temporary password opens nothing but the
password change, tokens are revoked or expire; on both databases."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from conveyor.auth.service import add_user
from conveyor.store.models import ApiToken, utcnow

PASSWORD = "correct horse battery"  # the api fixture's users: ada (admin), vic (viewer)
NEW_PASSWORD = "a brand new secret"


def _browser(api: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    browser = TestClient(api.app)
    login = browser.post("/api/v1/auth/login", json={"name": name, "password": password})
    assert login.status_code == 200, login.text
    browser.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    return browser


def test_only_admins_manage_accounts(api) -> None:  # type: ignore[no-untyped-def]
    viewer = _browser(api, "vic")
    for method, path, body in [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"name": "eve", "role": "admin"}),
        ("PATCH", "/api/v1/users/ada", {"disabled": True}),
        ("POST", "/api/v1/users/ada/password", {"password": "x" * 12}),
        ("GET", "/api/v1/tokens", None),
        ("POST", "/api/v1/tokens", {"name": "mine", "role": "admin"}),
        ("POST", "/api/v1/tokens/1/revoke", None),
    ]:
        for client in (viewer, api):  # a viewer session, the operator token
            response = client.request(method, path, json=body)
            assert response.status_code == 403, (method, path)
            assert "needs the admin role" in response.json()["error"]["message"]
    assert TestClient(api.app).get("/api/v1/users").status_code == 401


def test_disable_role_and_password_changes_end_sessions(api) -> None:  # type: ignore[no-untyped-def]
    admin, viewer = _browser(api, "ada"), _browser(api, "vic")
    listed = admin.get("/api/v1/users").json()["users"]
    assert {(u["name"], u["role"], u["sessions"]) for u in listed} == {
        ("ada", "admin", 1),
        ("vic", "viewer", 1),
    }
    promoted = admin.patch("/api/v1/users/vic", json={"role": "operator"})
    assert promoted.json()["role"] == "operator" and promoted.json()["sessions"] == 0
    assert viewer.get("/api/v1/items").status_code == 401
    viewer = _browser(api, "vic")
    assert admin.patch("/api/v1/users/vic", json={"disabled": True}).json()["disabled"]
    assert viewer.get("/api/v1/items").status_code == 401
    refused = TestClient(api.app).post(
        "/api/v1/auth/login", json={"name": "vic", "password": PASSWORD}
    )
    assert refused.status_code == 401
    assert not admin.patch("/api/v1/users/vic", json={"disabled": False}).json()["disabled"]
    viewer = _browser(api, "vic")
    reset = admin.post("/api/v1/users/vic/password", json={"password": NEW_PASSWORD})
    assert reset.status_code == 200 and reset.json()["password"] is None
    assert viewer.get("/api/v1/items").status_code == 401
    blocked = _browser(api, "vic", NEW_PASSWORD).get("/api/v1/items")
    assert blocked.status_code == 403
    assert blocked.json()["error"]["code"] == "password_change_required"


def test_the_last_admin_stays(api) -> None:  # type: ignore[no-untyped-def]
    admin = _browser(api, "ada")
    for change in ({"disabled": True}, {"role": "operator"}):
        refused = admin.patch("/api/v1/users/ada", json=change)
        assert refused.status_code == 422
        assert "last enabled admin" in refused.json()["error"]["message"]
    missing = admin.patch("/api/v1/users/nobody", json={"disabled": True})
    assert missing.status_code == 404 and "no user named 'nobody'" in missing.text
    bad = admin.patch("/api/v1/users/vic", json={"role": "root"})
    assert bad.status_code == 422


def test_a_temporary_password_opens_only_the_password_change(api) -> None:  # type: ignore[no-untyped-def]
    admin = _browser(api, "ada")
    created = admin.post("/api/v1/users", json={"name": "newbie", "role": "operator"})
    assert created.status_code == 201, created.text
    temporary = created.json()["password"]
    assert len(temporary) >= 20 and created.json()["user"]["must_change_password"]
    newbie = _browser(api, "newbie", temporary)
    me = newbie.get("/api/v1/auth/me").json()
    assert me["must_change_password"] and me["role"] == "operator"
    for method, path in [("GET", "/api/v1/items"), ("GET", "/api/v1/endpoints")]:
        blocked = newbie.request(method, path)
        assert blocked.status_code == 403
        error = blocked.json()["error"]
        assert error["code"] == "password_change_required"
        assert "POST /api/v1/auth/password" in error["message"]
    change = {"current_password": "wrong one!", "new_password": NEW_PASSWORD}
    wrong = newbie.post("/api/v1/auth/password", json=change)
    assert wrong.status_code == 422 and "current password is wrong" in wrong.text
    change["current_password"] = temporary
    short = newbie.post("/api/v1/auth/password", json=change | {"new_password": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    changed = newbie.post("/api/v1/auth/password", json=change)
    assert changed.status_code == 200 and not changed.json()["must_change_password"]
    newbie.headers["X-CSRF-Token"] = changed.json()["csrf_token"]  # a new session
    assert newbie.get("/api/v1/items").status_code == 200
    again = TestClient(api.app).post(
        "/api/v1/auth/login", json={"name": "newbie", "password": temporary}
    )
    assert again.status_code == 401


def test_changing_your_password_ends_your_other_sessions(api) -> None:  # type: ignore[no-untyped-def]
    laptop, phone = _browser(api, "vic"), _browser(api, "vic")
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert laptop.post("/api/v1/auth/password", json=change).status_code == 200
    assert laptop.get("/api/v1/items").status_code == 200
    assert phone.get("/api/v1/items").status_code == 401
    token = api.post("/api/v1/auth/password", json=change)
    assert token.status_code == 403 and "API tokens" in token.text


def test_tokens_are_listed_revoked_and_expire(api) -> None:  # type: ignore[no-untyped-def]
    admin = _browser(api, "ada")
    made = admin.post("/api/v1/tokens", json={"name": "ci", "role": "viewer", "expires_in": "30d"})
    assert made.status_code == 201, made.text
    token, info = made.json()["token"], made.json()["info"]
    assert info["state"] == "active" and info["expires_at"] is not None
    ci = TestClient(api.app, headers={"Authorization": f"Bearer {token}"})
    assert ci.get("/api/v1/items").status_code == 200
    listed = admin.get("/api/v1/tokens").json()["tokens"]
    assert {t["name"] for t in listed} == {"ops", "look", "ci"}
    assert all("token" not in t for t in listed)
    with api.installation.sessions.begin() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == info["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = ci.get("/api/v1/items")
    assert expired.status_code == 401 and "unknown or revoked" in expired.text
    states = {t["name"]: t["state"] for t in admin.get("/api/v1/tokens").json()["tokens"]}
    assert states["ci"] == "expired"
    ops_id = next(t["id"] for t in listed if t["name"] == "ops")
    assert admin.post(f"/api/v1/tokens/{ops_id}/revoke").json()["state"] == "revoked"
    assert api.get("/api/v1/items").status_code == 401  # the operator token of the fixture
    assert "ops" not in {t["name"] for t in admin.get("/api/v1/tokens").json()["tokens"]}
    assert admin.get("/api/v1/tokens?revoked=true").json()["tokens"][0]["state"] == "revoked"
    bad = admin.post("/api/v1/tokens", json={"name": "x", "expires_in": "forever"})
    assert bad.status_code == 422 and "30d" in bad.json()["error"]["message"]
    assert admin.post("/api/v1/tokens/999/revoke").status_code == 404


def test_the_first_admin_must_change_the_password(installation) -> None:  # type: ignore[no-untyped-def]
    from conveyor.api.app import create_app

    with installation.sessions.begin() as session:
        add_user(session, "admin", "printed once at start", "admin", must_change_password=True)
    client = TestClient(create_app(installation, auth_required=True))
    first = {"name": "admin", "password": "printed once at start"}
    login = client.post("/api/v1/auth/login", json=first)
    assert login.json()["must_change_password"] is True
    client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    assert client.get("/api/v1/users").json()["error"]["code"] == "password_change_required"
    change = {"current_password": "printed once at start", "new_password": NEW_PASSWORD}
    client.headers["X-CSRF-Token"] = client.post("/api/v1/auth/password", json=change).json()[
        "csrf_token"
    ]
    assert [u["name"] for u in client.get("/api/v1/users").json()["users"]] == ["admin"]
