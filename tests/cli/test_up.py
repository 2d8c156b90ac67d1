"""`conveyor up` as a process: it refuses to serve an open API to the network, and on first
start prints a one-time admin password that must be changed at the first login."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support.up import ConveyorUp


def test_refuses_no_auth_on_a_network_address(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "conveyor.cli", "--home", str(tmp_path / "home"), "up"]
    command += ["--no-auth", "--host", "0.0.0.0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "refusing to serve on 0.0.0.0 without authentication" in message
    assert "--allow-insecure" in message
    assert not (tmp_path / "home" / "conveyor.db").exists()


def _one_time_password(output: str) -> str:
    lines = output.splitlines()
    [index] = [n for n, line in enumerate(lines) if "one-time password" in line]
    return lines[index + 1].strip()


@pytest.mark.slow
def test_first_start_prints_a_one_time_admin_password(  # type: ignore[no-untyped-def]
    tmp_path: Path, database_url: str, ray_cluster: str
) -> None:
    env = {"CONVEYOR_DATABASE_URL": database_url, "CONVEYOR_PIPELINES": "support.pipelines"}
    up = ConveyorUp(tmp_path / "home", env, "--no-inbox", "--ray-address", ray_cluster)
    try:
        up.wait_until_healthy()
        password = _one_time_password(up.output())
        assert len(password) >= 20
        login = {"name": "admin", "password": password}
        with httpx.Client(base_url=up.url, timeout=30) as browser:
            me = browser.post("/api/v1/auth/login", json=login)
            assert me.status_code == 200 and me.json()["role"] == "admin"
            assert me.json()["must_change_password"] is True
            blocked = browser.get("/api/v1/items")
            assert blocked.status_code == 403
            assert blocked.json()["error"]["code"] == "password_change_required"
            change = {"current_password": password, "new_password": "the admin's own secret"}
            headers = {"X-CSRF-Token": me.json()["csrf_token"]}
            changed = browser.post("/api/v1/auth/password", json=change, headers=headers)
            assert changed.status_code == 200, changed.text
            assert browser.get("/api/v1/items").status_code == 200
        assert httpx.post(f"{up.url}/api/v1/auth/login", json=login).status_code == 401
    finally:
        exit_code = up.stop()
    assert exit_code == 0, up.output()
    assert "stopped; held items were handed back" in up.output()
