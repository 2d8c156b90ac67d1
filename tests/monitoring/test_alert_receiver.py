"""Conveyor's Alertmanager receiver: POST /api/v1/alerts/webhook with an operator token keeps
firing and resolved alerts with their history, on SQLite and PostgreSQL; the UI lists them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.auth.service import create_token
from conveyor.installation import Installation
from conveyor.monitoring.alerts import FIRING, RESOLVED, Known, Notice, link_path, next_state
from conveyor.settings import load_settings
from support.alerting import webhook_payload

T0, T1, T2 = datetime(2026, 11, 28, 10), datetime(2026, 11, 28, 11), datetime(2026, 11, 28, 12)


def _notice(status: str, starts_at: datetime, ends_at: datetime | None = None) -> Notice:
    return Notice("f1", status, {"alertname": "A"}, {}, starts_at, ends_at)


def test_only_changes_of_state_become_history() -> None:
    assert next_state(None, _notice(FIRING, T0)) == FIRING
    assert next_state(Known(FIRING, T0, None), _notice(FIRING, T0)) is None  # a repeat
    assert next_state(Known(FIRING, T0, None), _notice(RESOLVED, T0, T1)) == RESOLVED
    assert next_state(Known(RESOLVED, T0, T1), _notice(FIRING, T0)) is None  # a late retry
    assert next_state(Known(RESOLVED, T0, T1), _notice(FIRING, T2)) == FIRING  # fired again
    assert next_state(Known(FIRING, T2, None), _notice(RESOLVED, T0, T1)) is None  # older


def test_links_name_the_page_an_alert_is_about() -> None:
    assert link_path({"endpoint": "heart", "pipeline": "x"}) == "/endpoints/heart"
    assert link_path({"item_id": "abc"}) == "/items/abc"
    assert link_path({"model": "movies"}) == "/models/movies"
    assert link_path({"pipeline": "a b"}) == "/items?pipeline=a%20b"
    assert link_path({"instance": "h:1"}) is None


@pytest.fixture
def receiver(tmp_path: Path, database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    installation = Installation(load_settings(tmp_path / "home", database_url=database_url))
    with installation.sessions.begin() as session:
        tokens = {role: create_token(session, role, role) for role in ("operator", "viewer")}
    yield TestClient(create_app(installation, auth_required=True)), tokens
    installation.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_receiver_keeps_firing_and_resolved_alerts_with_history(receiver) -> None:
    client, tokens = receiver
    url = "/api/v1/alerts/webhook"
    assert client.post(url, json=webhook_payload(FIRING)).status_code == 401
    refused = client.post(url, json=webhook_payload(FIRING), headers=_bearer(tokens["viewer"]))
    assert refused.status_code == 403
    operator = _bearer(tokens["operator"])
    for _ in range(2):  # Alertmanager repeats a group: one history entry only
        answer = client.post(url, json=webhook_payload(FIRING), headers=operator)
        assert answer.status_code == 200, answer.text
    listed = client.get("/api/v1/alerts", headers=_bearer(tokens["viewer"])).json()
    [alert] = listed["alerts"]
    assert (alert["status"], alert["severity"], alert["component"]) == (
        FIRING,
        "warning",
        "serving",
    )
    assert alert["ends_at"] is None and alert["link"] == "/endpoints/heart"
    assert alert["starts_at"].startswith("2026-11-28T10:00:00.123")
    page = client.get("/alerts", headers=_bearer(tokens["viewer"]))
    assert 'data-status="firing"' in page.text and 'href="/endpoints/heart"' in page.text

    resolved = webhook_payload(RESOLVED, ends_at="2026-11-28T10:07:00Z")
    assert client.post(url, json=resolved, headers=operator).json()["changed"] == [
        {"fingerprint": "0a1b2c3d4e5f6a7b", "status": RESOLVED}
    ]
    listed = client.get("/api/v1/alerts", headers=operator).json()
    assert [a["status"] for a in listed["alerts"]] == [RESOLVED]
    assert listed["alerts"][0]["ends_at"].startswith("2026-11-28T10:07:00")
    assert [e["status"] for e in listed["history"]] == [RESOLVED, FIRING]
    assert 'data-status="resolved"' in client.get("/alerts", headers=operator).text


def test_the_receiver_refuses_what_alertmanager_never_sends(receiver) -> None:
    client, tokens = receiver
    bad = webhook_payload(FIRING)
    bad["alerts"][0]["fingerprint"] = "../../etc"
    answer = client.post("/api/v1/alerts/webhook", json=bad, headers=_bearer(tokens["operator"]))
    assert answer.status_code == 422
