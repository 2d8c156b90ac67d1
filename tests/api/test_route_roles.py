"""Every route of the app (API and UI) against one declared matrix of who may call it, so a new
route cannot ship unprotected: a route missing from ROUTES fails the test.

For each route, anonymous callers and each role (viewer, operator, admin) call it with dummy
path parameters and an empty JSON body; authorisation comes before validation, so a caller
below the route's role gets 401/403 (UI pages: a redirect to the login page) and a caller at or
above it gets anything else (200, 404 for the dummy name, 422 for the empty body, ...)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.auth.service import add_user, create_token

PASSWORD = "correct horse battery"
CALLERS = ("anonymous", "viewer", "operator", "admin")
RANK = {caller: rank for rank, caller in enumerate(CALLERS)}
ANYONE, VIEWER, OPERATOR, ADMIN = "anonymous", "viewer", "operator", "admin"
SESSION_USER = "session user"  # a signed-in person, not a token (changing one's own password)

# (method, path) -> the least caller that may use it. docs/api.md and docs/serving.md list the
# same roles; add a new route here with the role its code enforces.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/api/openapi.json"): ANYONE,
    ("GET", "/api/docs"): ANYONE,
    ("GET", "/docs/oauth2-redirect"): ANYONE,
    ("POST", "/api/v1/auth/login"): ANYONE,
    ("POST", "/api/v1/auth/logout"): ANYONE,
    ("GET", "/api/v1/auth/me"): VIEWER,
    ("POST", "/api/v1/auth/password"): SESSION_USER,
    ("POST", "/api/v1/items"): OPERATOR,
    ("POST", "/api/v1/items/records"): OPERATOR,
    ("POST", "/api/v1/items/references"): OPERATOR,
    ("GET", "/api/v1/datasets"): VIEWER,
    ("GET", "/api/v1/datasets/{digest}"): VIEWER,
    ("GET", "/api/v1/datasets/{digest}/file"): OPERATOR,
    ("GET", "/api/v1/items"): VIEWER,
    ("GET", "/api/v1/items/{item_id}"): VIEWER,
    ("GET", "/api/v1/items/{item_id}/result"): VIEWER,
    ("GET", "/api/v1/items/{item_id}/artifacts/{path:path}"): VIEWER,
    ("POST", "/api/v1/items/{item_id}/cancel"): OPERATOR,
    ("POST", "/api/v1/items/{item_id}/retry"): OPERATOR,
    ("POST", "/api/v1/items/retry-failed"): OPERATOR,
    ("GET", "/api/v1/results"): VIEWER,
    ("GET", "/api/v1/inbox"): VIEWER,
    ("POST", "/api/v1/inbox/scan"): OPERATOR,
    ("GET", "/api/v1/stats"): VIEWER,
    ("GET", "/api/v1/stats/steps"): VIEWER,
    ("GET", "/api/v1/workers"): VIEWER,
    ("GET", "/api/v1/pipelines"): VIEWER,
    ("GET", "/api/v1/hardware"): VIEWER,
    ("GET", "/api/v1/models"): VIEWER,
    ("GET", "/api/v1/models/{name}"): VIEWER,
    ("GET", "/api/v1/models/{name}/history"): VIEWER,
    ("POST", "/api/v1/models/{name}/train"): OPERATOR,
    ("POST", "/api/v1/models/{name}/rows"): OPERATOR,
    ("POST", "/api/v1/models/{name}/events"): OPERATOR,
    ("POST", "/api/v1/models/{name}/batch"): OPERATOR,
    ("GET", "/api/v1/models/{name}/batch/{job_id}"): VIEWER,
    ("POST", "/api/v1/models/{name}/promote"): ADMIN,
    ("POST", "/api/v1/models/{name}/rollback"): ADMIN,
    ("GET", "/api/v1/models/{name}/onnx"): VIEWER,
    ("POST", "/api/v1/endpoints/{name}/predict"): VIEWER,
    ("GET", "/api/v1/endpoints/{name}/recommend/{user_id}"): VIEWER,
    ("GET", "/api/v1/endpoints"): VIEWER,
    ("GET", "/api/v1/endpoints/{name}/routing"): VIEWER,
    ("PUT", "/api/v1/endpoints/{name}/routing"): OPERATOR,  # some changes need admin (policy)
    ("POST", "/api/v1/endpoints/{name}/events"): VIEWER,
    ("GET", "/api/v1/endpoints/{name}/quality"): VIEWER,
    ("GET", "/api/v1/endpoints/{name}/stats"): VIEWER,
    ("POST", "/api/v1/predictions/{prediction_id}/feedback"): VIEWER,
    ("POST", "/api/v1/experiments"): OPERATOR,
    ("GET", "/api/v1/experiments"): VIEWER,
    ("GET", "/api/v1/experiments/{experiment_id}"): VIEWER,
    ("POST", "/api/v1/experiments/{experiment_id}/end"): OPERATOR,
    ("DELETE", "/api/v1/experiments/{experiment_id}"): OPERATOR,
    ("GET", "/api/v1/experiments/{experiment_id}/segments"): VIEWER,
    ("POST", "/api/v1/alerts/webhook"): OPERATOR,  # Alertmanager's token
    ("GET", "/api/v1/alerts"): VIEWER,
    ("GET", "/api/v1/streams"): VIEWER,
    ("POST", "/api/v1/streams"): ADMIN,  # a source carries broker credentials
    ("GET", "/api/v1/streams/{name}"): VIEWER,
    ("DELETE", "/api/v1/streams/{name}"): ADMIN,
    ("GET", "/api/v1/streams/{name}/dead-letters"): VIEWER,
    ("POST", "/api/v1/streams/{name}/enable"): OPERATOR,
    ("POST", "/api/v1/streams/{name}/disable"): OPERATOR,
    ("GET", "/api/v1/streams/sinks"): VIEWER,
    ("POST", "/api/v1/streams/sinks"): ADMIN,  # a sink carries broker credentials
    ("DELETE", "/api/v1/streams/sinks/{name}"): ADMIN,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("PATCH", "/api/v1/users/{name}"): ADMIN,
    ("POST", "/api/v1/users/{name}/password"): ADMIN,
    ("POST", "/api/v1/users/{name}/logout"): ADMIN,
    ("GET", "/api/v1/tokens"): ADMIN,
    ("POST", "/api/v1/tokens"): ADMIN,
    ("POST", "/api/v1/tokens/{token_id}/revoke"): ADMIN,
    ("GET", "/healthz"): ANYONE,
    ("GET", "/readyz"): ANYONE,
    ("GET", "/metrics"): ANYONE,
    ("GET", "/recommend/{user_id}"): VIEWER,
    ("GET", "/static"): ANYONE,  # the mount of CSS, JS and vendored libraries
    ("GET", "/static/pipelines/calls"): ANYONE,  # the calls pipeline's static_assets
    # Web pages: signed-in people see them; what they may do there goes through the API.
    ("GET", "/login"): ANYONE,
    ("GET", "/"): VIEWER,
    ("GET", "/ui/dashboard"): VIEWER,
    ("GET", "/upload"): VIEWER,
    ("GET", "/items"): VIEWER,
    ("GET", "/ui/items"): VIEWER,
    ("GET", "/items/{item_id}"): VIEWER,
    ("GET", "/ui/items/{item_id}"): VIEWER,
    ("GET", "/items/{item_id}/result.csv"): VIEWER,
    ("GET", "/results"): VIEWER,
    ("GET", "/models"): VIEWER,
    ("GET", "/models/{name}"): VIEWER,
    ("GET", "/endpoints"): VIEWER,
    ("GET", "/endpoints/{name}"): VIEWER,
    ("GET", "/alerts"): VIEWER,
    ("GET", "/streams"): VIEWER,
    ("GET", "/account/password"): VIEWER,
    ("GET", "/users"): ADMIN,  # others get a 403 page saying admins manage users
}
# Bodies that pass validation where the role check sits inside the route.
BODIES = {
    ("POST", "/api/v1/auth/password"): {
        "current_password": "not the password",
        "new_password": "a new password, long enough",
    },
}
API_PREFIXES = ("/api/", "/recommend/", "/healthz", "/readyz", "/metrics", "/docs/")


def _app_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(app.routes):
        for method in route.methods or {"GET"}:  # a mount serves GET
            if method != "HEAD":
                found.add((method, route.path))
    return found


def _url(path: str) -> str:
    if path == "/static":
        return "/static/app.css"
    if path == "/static/pipelines/calls":
        return "/static/pipelines/calls/call_player.js"
    path = path.replace("{path:path}", "nothing.txt")
    return re.sub(r"\{(\w+)\}", lambda m: "7" if m.group(1) == "user_id" else "zz-none", path)


@pytest.fixture
def clients(installation) -> dict[str, TestClient]:  # type: ignore[no-untyped-def]
    """A client per caller: bearer tokens for the API, a session (with CSRF) for pages."""
    app = create_app(installation, auth_required=True)
    tokens, sessions = {}, {}
    with installation.sessions.begin() as session:
        for role in CALLERS[1:]:
            add_user(session, f"{role}-person", PASSWORD, role)
            tokens[role] = create_token(session, f"{role}-script", role)
    for role in CALLERS[1:]:
        browser = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
        login = {"name": f"{role}-person", "password": PASSWORD}
        csrf = browser.post("/api/v1/auth/login", json=login).json()["csrf_token"]
        browser.headers["X-CSRF-Token"] = csrf
        sessions[role] = browser
    clients = {"anonymous": TestClient(app, follow_redirects=False, raise_server_exceptions=False)}
    for role, token in tokens.items():
        clients[role] = TestClient(
            app, follow_redirects=False, headers={"Authorization": f"Bearer {token}"}
        )
    clients.update({f"{role} session": browser for role, browser in sessions.items()})
    return clients


def _call(client: TestClient, method: str, path: str) -> Any:
    if method not in ("POST", "PUT", "PATCH"):
        return client.request(method, _url(path))
    return client.request(method, _url(path), json=BODIES.get((method, path), {}))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_route_is_in_the_matrix(installation) -> None:  # type: ignore[no-untyped-def]
    routes = _app_routes(create_app(installation, auth_required=True))
    missing = sorted(routes - set(ROUTES))
    assert not missing, f"routes without a declared role (add them to ROUTES): {missing}"
    stale = sorted(set(ROUTES) - routes)
    assert not stale, f"ROUTES names routes the app does not have: {stale}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_route_refuses_callers_below_its_role(clients) -> None:  # type: ignore[no-untyped-def]
    wrong = []
    for (method, path), least in ROUTES.items():
        page = not path.startswith(API_PREFIXES)
        for caller in CALLERS:
            client = clients[f"{caller} session" if page and caller != "anonymous" else caller]
            answer = _call(client, method, path)
            expected = _expected(least, caller, page)
            if not expected(answer):
                wrong.append(
                    f"{method} {path} as {caller}: {answer.status_code} {answer.text[:120]}"
                )
    assert not wrong, "\n".join(wrong)


def _expected(least: str, caller: str, page: bool):  # type: ignore[no-untyped-def]
    if least == SESSION_USER:  # tokens are refused, people are not
        allowed = False if caller == "anonymous" else None
    else:
        allowed = RANK[caller] >= RANK[least]
    if allowed is None:
        return lambda answer: answer.status_code == 403 and _code(answer) == "forbidden"
    if allowed:
        return lambda answer: answer.status_code not in (401, 403, 500) and not _to_login(answer)
    if page and caller == "anonymous":
        return _to_login
    if page:
        return lambda answer: answer.status_code == 403
    if caller == "anonymous":
        return lambda answer: answer.status_code == 401 and _code(answer) == "unauthenticated"
    return lambda answer: answer.status_code == 403 and _code(answer) == "forbidden"


def _code(answer: Any) -> str | None:
    try:
        return answer.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def _to_login(answer: Any) -> bool:
    return answer.status_code == 303 and bool(
        re.match(r"/login($|\?next=)", answer.headers.get("location", ""))
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_session_without_its_csrf_header_changes_nothing(clients) -> None:  # type: ignore[no-untyped-def]
    browser = clients["admin session"]
    unsafe = [
        (method, path)
        for (method, path), least in ROUTES.items()
        if method != "GET" and least != ANYONE and path.startswith("/api/")
    ]
    assert ("POST", "/api/v1/endpoints/{name}/predict") in unsafe
    for method, path in unsafe:
        body = BODIES.get((method, path), {})
        refused = browser.request(method, _url(path), json=body, headers={"X-CSRF-Token": ""})
        assert refused.status_code == 403, f"{method} {path}: {refused.text[:200]}"
        assert _code(refused) == "csrf_failed", f"{method} {path}"
    predict = _url("/api/v1/endpoints/{name}/predict").replace("zz-none", "heart")
    with_header = browser.post(predict, json={"age": 61})
    assert with_header.status_code not in (401, 403), with_header.text  # the check passed


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_conveyor_serve_app_asks_for_credentials_in_front_of_its_fast_path(
    installation, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from conveyor.serving.app import create_serving_app

    with installation.sessions.begin() as session:
        add_user(session, "vera", PASSWORD, "viewer")
        token = create_token(session, "serve-viewer", "viewer")
    settings = installation.settings
    monkeypatch.setenv("CONVEYOR_HOME", str(settings.home))
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CONVEYOR_AUTH_REQUIRED", "true")
    served = TestClient(create_serving_app(), raise_server_exceptions=False)
    predict = "/api/v1/endpoints/heart/predict"

    assert _code(served.post(predict, json={"age": 61})) == "unauthenticated"
    bad = served.post(predict, json={"age": 61}, headers={"Authorization": "Bearer cvy_wrong"})
    assert bad.status_code == 401 and _code(bad) == "unauthenticated"
    assert served.get("/api/v1/items").status_code == 401
    viewer = {"Authorization": f"Bearer {token}"}
    answered = served.post(predict, json={"age": 61}, headers=viewer)
    assert answered.status_code not in (401, 403), answered.text  # no model yet: 409 or 422
    assert served.post("/api/v1/items", json={}, headers=viewer).status_code == 403

    login = served.post("/api/v1/auth/login", json={"name": "vera", "password": PASSWORD})
    assert login.status_code == 200, login.text
    no_csrf = served.post(predict, json={"age": 61})
    assert no_csrf.status_code == 403 and _code(no_csrf) == "csrf_failed"
    csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
    assert served.post(predict, json={"age": 61}, headers=csrf).status_code not in (401, 403)
