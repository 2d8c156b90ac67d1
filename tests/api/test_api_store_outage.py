"""While the store (PostgreSQL) is down the API answers 503 with Retry-After and its usual
error body, not 500, and answers normally again once it is back, by itself. The cluster is
the test's own (the shared one is never stopped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from conveyor.api.app import create_app
from conveyor.auth.service import create_token
from conveyor.installation import Installation
from conveyor.settings import load_settings
from support.throwaway_postgres import ThrowawayPostgres, new_database, throwaway_postgres


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as started:
        yield started


def test_the_api_answers_503_while_the_store_is_down_and_recovers(
    cluster: ThrowawayPostgres, tmp_path: Path
) -> None:
    settings = load_settings(
        tmp_path / "home", database_url=new_database(cluster), pipelines=["support.pipelines"]
    )
    installation = Installation(settings)
    with installation.sessions.begin() as session:
        token = create_token(session, "ops", "operator")
    client = TestClient(create_app(installation, auth_required=True), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {token}"
    record = {"pipeline": "noop", "record": {"n": 1}}
    assert client.post("/api/v1/items", json=record).status_code == 201
    cluster.stop()
    try:
        for method, path, body in [
            ("GET", "/api/v1/items", None),
            ("POST", "/api/v1/items", {"pipeline": "noop", "record": {"n": 2}}),
            ("GET", "/api/v1/stats", None),
        ]:
            answer = client.request(method, path, json=body)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["Retry-After"] == "5"
            assert answer.json()["error"]["code"] == "store_unavailable"
            assert "try again" in answer.json()["error"]["message"].lower()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["details"]["store"].startswith("error")
    finally:
        cluster.start()
    # Back by itself: the pool's pre-ping replaces the connections the outage broke.
    assert client.get("/readyz").json()["checks"]["store"] == "ok"
    assert client.post("/api/v1/items", json={**record, "record": {"n": 2}}).status_code == 201
    # The POST refused during the outage left nothing behind.
    assert len(client.get("/api/v1/items").json()["items"]) == 2
    installation.close()


def test_other_database_errors_stay_500_without_detail(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "home", pipelines=["support.pipelines"])
    installation = Installation(settings)
    app = create_app(installation, auth_required=False)

    @app.get("/api/v1/broken-sql")
    def broken() -> None:
        with installation.sessions() as session:
            session.execute(text("select * from no_such_table"))

    answer = TestClient(app, raise_server_exceptions=False).get("/api/v1/broken-sql")
    assert answer.status_code == 500 and "Retry-After" not in answer.headers
    assert answer.json()["error"]["code"] == "internal_error"
    assert "no_such_table" not in answer.text
    installation.close()
