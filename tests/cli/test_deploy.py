"""`conveyor deploy secrets` and `conveyor deploy init`, checked by using what they make."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conveyor.api.app import create_app
from conveyor.cli.app import app
from conveyor.installation import Installation
from conveyor.settings import load_settings


def _conveyor(home: Path, *arguments: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--home", str(home), *arguments])


def _read(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_secrets_file_is_new_random_and_private(tmp_path: Path) -> None:
    first, second = tmp_path / "one.env", tmp_path / "two.env"
    assert _conveyor(tmp_path, "deploy", "secrets", str(first)).exit_code == 0
    assert _conveyor(tmp_path, "deploy", "secrets", str(second)).exit_code == 0
    values, others = _read(first), _read(second)
    names = {"POSTGRES_PASSWORD", "RAY_AUTH_TOKEN", "CONVEYOR_ADMIN_PASSWORD"}
    assert set(values) == names | {"CONVEYOR_ALERTS_TOKEN"}
    assert all(len(value) >= 24 for value in values.values())
    assert not set(values.values()) & set(others.values())
    assert stat.S_IMODE(first.stat().st_mode) == 0o600


def test_secrets_never_replaces_a_file(tmp_path: Path) -> None:
    existing = tmp_path / ".env"
    existing.write_text("POSTGRES_PASSWORD=kept\n")
    result = _conveyor(tmp_path, "deploy", "secrets", str(existing))
    assert result.exit_code == 2
    assert "exists" in result.stderr
    assert existing.read_text() == "POSTGRES_PASSWORD=kept\n"


def test_secrets_needs_an_existing_folder(tmp_path: Path) -> None:
    result = _conveyor(tmp_path, "deploy", "secrets", str(tmp_path / "missing" / ".env"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_init_creates_the_first_admin_once(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", database_url)
    monkeypatch.setenv("CONVEYOR_ADMIN_PASSWORD", "first admin password 42")
    home = tmp_path / "home"
    assert _conveyor(home, "deploy", "init").exit_code == 0
    monkeypatch.setenv("CONVEYOR_ADMIN_PASSWORD", "another password entirely")
    again = _conveyor(home, "deploy", "init")
    assert again.exit_code == 0 and "no admin added" in again.output
    installation = Installation(load_settings(home))
    try:
        client = TestClient(create_app(installation, auth_required=True))
        login = {"name": "admin", "password": "first admin password 42"}
        assert client.post("/api/v1/auth/login", json=login).status_code == 200
    finally:
        installation.close()


def test_init_registers_the_alerts_token_once(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alertmanager's token from the secrets file opens Conveyor's receiver, nothing more."""
    token = "cvy_" + "a1" * 20
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", database_url)
    monkeypatch.setenv("CONVEYOR_ADMIN_PASSWORD", "first admin password 42")
    monkeypatch.setenv("CONVEYOR_ALERTS_TOKEN", token)
    home = tmp_path / "home"
    assert "registered CONVEYOR_ALERTS_TOKEN" in _conveyor(home, "deploy", "init").output
    assert "registered" not in _conveyor(home, "deploy", "init").output
    installation = Installation(load_settings(home))
    try:
        client = TestClient(create_app(installation, auth_required=True))
        headers = {"Authorization": f"Bearer {token}"}
        body = {"version": "4", "status": "firing", "receiver": "conveyor", "alerts": []}
        answer = client.post("/api/v1/alerts/webhook", json=body, headers=headers)
        assert answer.status_code in (200, 204), answer.text
        assert client.post("/api/v1/users", json={}, headers=headers).status_code == 403
    finally:
        installation.close()


def test_init_refuses_without_a_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_ADMIN_PASSWORD", raising=False)
    result = _conveyor(tmp_path / "home", "deploy", "init")
    assert result.exit_code == 2
    assert "CONVEYOR_ADMIN_PASSWORD" in result.stderr
