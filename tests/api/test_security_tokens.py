"""Credentials checks that cannot be turned against the store or timed (issue 13, finding 8):
a guessed bearer token or session cookie only reads (on SQLite it must not queue for the write
lock), a valid token's last use is written at most once a minute, and the CSRF token is
compared in constant time."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from conveyor.api import security
from conveyor.store.models import ApiToken

WRITES = ("BEGIN IMMEDIATE", "UPDATE", "INSERT", "DELETE")


@contextmanager
def _statements(engine) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement.strip().upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith(WRITES)]


def test_unknown_tokens_and_cookies_only_read(api) -> None:  # type: ignore[no-untyped-def]
    anonymous, forger = TestClient(api.app), TestClient(api.app)
    forger.cookies.set("conveyor_session", "forged")
    with _statements(api.installation.engine) as statements:
        guessed = anonymous.get("/api/v1/items", headers={"Authorization": "Bearer cvy_guess"})
        forged = forger.get("/api/v1/items")
    assert guessed.status_code == 401 and forged.status_code == 401
    assert any(s.startswith("SELECT") for s in statements)
    assert _writes(statements) == []


def test_a_guessed_token_does_not_wait_for_the_sqlite_write_lock(api) -> None:  # type: ignore[no-untyped-def]
    engine = api.installation.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL reads never wait for writers; the test above covers it")
    writer = sqlite3.connect(engine.url.database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        started = time.monotonic()
        response = TestClient(api.app).get(
            "/api/v1/items", headers={"Authorization": "Bearer cvy_guess"}
        )
        seconds = time.monotonic() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert response.status_code == 401
    assert seconds < 5, f"the lookup waited {seconds:.1f} s for the write lock"


def _last_used(api):  # type: ignore[no-untyped-def]
    with api.installation.sessions() as session:
        return session.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "ops"))


def test_a_valid_tokens_last_use_is_written_at_most_once_a_minute(api) -> None:  # type: ignore[no-untyped-def]
    assert _last_used(api) is None
    assert api.get("/api/v1/items").status_code == 200
    first = _last_used(api)
    assert first is not None
    with _statements(api.installation.engine) as statements:
        assert api.get("/api/v1/items").status_code == 200
    # (the route's own session may write-lock SQLite; the token lookup must not write)
    assert [s for s in statements if "API_TOKENS" in s and s.startswith("UPDATE")] == []
    assert _last_used(api) == first


def test_the_csrf_token_is_compared_in_constant_time(api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    compared: list[tuple[bytes, bytes]] = []
    real = security.hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", recording)
    browser = TestClient(api.app)
    login = browser.post(
        "/api/v1/auth/login", json={"name": "ada", "password": "correct horse battery"}
    )
    csrf = login.json()["csrf_token"]
    record = {"pipeline": "noop", "record": {"n": 1}}
    forged = csrf[:-1] + ("A" if csrf[-1] != "A" else "B")  # same length, last byte differs
    refused = browser.post("/api/v1/items", json=record, headers={"X-CSRF-Token": forged})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert compared == [(forged.encode(), csrf.encode())]
    accepted = browser.post("/api/v1/items", json=record, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 201
