"""`conveyor users add` and `conveyor tokens create`, checked by using what they make."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conveyor.api.app import create_app
from conveyor.cli.app import app
from conveyor.installation import Installation
from conveyor.settings import load_settings

PASSWORD = "a long enough secret"


@pytest.fixture
def home(tmp_path: Path, database_url: str, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", database_url)
    monkeypatch.setenv("CONVEYOR_PIPELINES", "support.pipelines")
    return tmp_path / "home"


def _conveyor(home: Path, *arguments: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--home", str(home), *arguments], input=stdin)


@pytest.fixture
def api(home: Path):  # type: ignore[no-untyped-def]
    """The API of the same installation, built once the CLI has made its accounts."""
    installations = []

    def build() -> TestClient:
        installations.append(Installation(load_settings(home)))
        return TestClient(create_app(installations[-1], auth_required=True))

    yield build
    for installation in installations:
        installation.close()


def test_users_add_reads_the_password_from_stdin(home: Path, api) -> None:  # type: ignore[no-untyped-def]
    added = _conveyor(
        home,
        "users",
        "add",
        "olga",
        "--role",
        "operator",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    assert "added user 'olga' with role operator" in added.stdout
    client = api()
    me = client.post("/api/v1/auth/login", json={"name": "olga", "password": PASSWORD})
    assert me.status_code == 200 and me.json()["role"] == "operator"
    wrong = client.post("/api/v1/auth/login", json={"name": "olga", "password": PASSWORD + "x"})
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("arguments", "stdin", "message"),
    [
        (["users", "add", "p", "--password-stdin"], "short\n", "at least 10 characters"),
        (["users", "add", "p", "--role", "boss", "--password-stdin"], PASSWORD, "role must be"),
        (["tokens", "create", "t", "--role", "root"], None, "role must be one of"),
    ],
)
def test_account_mistakes_exit_2_with_a_message(  # type: ignore[no-untyped-def]
    home: Path, arguments: list[str], stdin: str | None, message: str
) -> None:
    result = _conveyor(home, *arguments, stdin=stdin)
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_user_name_is_taken_once(home: Path) -> None:
    args = ("users", "add", "olga", "--password-stdin")
    assert _conveyor(home, *args, stdin=PASSWORD).exit_code == 0
    again = _conveyor(home, *args, stdin=PASSWORD)
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_tokens_create_prints_the_token_alone_on_the_last_line(home: Path, api) -> None:  # type: ignore[no-untyped-def]
    created = _conveyor(home, "tokens", "create", "dashboards", "--role", "viewer")
    assert created.exit_code == 0, created.output
    token = created.stdout.rstrip("\n").splitlines()[-1]
    assert token.startswith("cvy_") and " " not in token and len(token) > 40
    client = api()
    client.headers["Authorization"] = f"Bearer {token}"
    assert client.get("/api/v1/auth/me").json() == {
        "name": "dashboards",
        "role": "viewer",
        "kind": "token",
        "csrf_token": None,
    }
    assert client.get("/api/v1/items").status_code == 200
    record = {"pipeline": "noop", "record": 1}
    assert client.post("/api/v1/items", json=record).status_code == 403
