"""Predict with logins: bearer tokens (verified once, then cached briefly), sessions with their
CSRF check, and the token cache on its own."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update

from conveyor.api.app import create_app
from conveyor.auth.service import create_token
from conveyor.serving.tokens import TokenCache
from conveyor.store.models import ApiToken


def test_token_cache_expires_and_keeps_no_token() -> None:
    now = [100.0]
    cache: TokenCache[str] = TokenCache(ttl_seconds=5, clock=lambda: now[0])
    cache.put("Bearer secret", "viewer")
    assert cache.get("Bearer secret") == "viewer" and cache.get("Bearer other") is None
    assert all(b"secret" not in key for key in cache._entries)
    now[0] += 6
    assert cache.get("Bearer secret") is None


def test_predict_needs_a_valid_token(sqlite_serving, heart_record) -> None:
    serving = sqlite_serving
    installation = serving.installation
    with installation.sessions.begin() as session:
        token = create_token(session, "app", "viewer")
    app = create_app(installation, auth_required=True)
    app.state.serving = serving.service  # the loaded models of this test
    client = TestClient(app)
    url = "/api/v1/endpoints/heart/predict"
    assert client.post(url, json=heart_record).status_code == 401
    wrong = client.post(url, json=heart_record, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(3):  # the first call verifies in the store, the others hit the cache
        response = client.post(url, json=heart_record, headers=headers)
        assert response.status_code == 200 and response.json()["version"] == 1
    assert app.state.serving_tokens.get(f"Bearer {token}") is not None
    with installation.sessions.begin() as session:
        session.execute(update(ApiToken).where(ApiToken.name == "app").values(revoked=True))
    app.state.serving_tokens = TokenCache()  # as after the cache's few seconds
    assert client.post(url, json=heart_record, headers=headers).status_code == 401
    cookie = client.post(url, json=heart_record, cookies={"conveyor_session": "forged"})
    assert cookie.status_code == 401
