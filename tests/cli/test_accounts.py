"""`conveyor users` and `conveyor tokens`, checked by using what they make."""

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
        "must_change_password": False,
    }
    assert client.get("/api/v1/items").status_code == 200
    record = {"pipeline": "noop", "record": 1}
    assert client.post("/api/v1/items", json=record).status_code == 403


def _add(home: Path, name: str, role: str = "viewer") -> None:
    added = _conveyor(
        home, "users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD
    )
    assert added.exit_code == 0, added.output


def _log_in(client, name: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/auth/login", json={"name": name, "password": password})


def test_users_list_disable_enable_role_and_passwd(home: Path, api) -> None:  # type: ignore[no-untyped-def]
    _add(home, "olga", "operator")
    _add(home, "root", "admin")
    client = api()
    assert _log_in(client, "olga").status_code == 200
    listed = _conveyor(home, "users", "list")
    assert listed.exit_code == 0
    row = next(line for line in listed.stdout.splitlines() if "olga" in line)
    assert "operator" in row and "enabled" in row and " 1 " in row  # one open session
    disabled = _conveyor(home, "users", "disable", "olga")
    assert disabled.exit_code == 0 and "sessions ended" in disabled.stdout
    assert client.get("/api/v1/items").status_code == 401
    assert _log_in(client, "olga").status_code == 401
    assert "disabled" in _conveyor(home, "users", "list").stdout
    assert _conveyor(home, "users", "enable", "olga").exit_code == 0
    assert _log_in(client, "olga").status_code == 200
    role = _conveyor(home, "users", "role", "olga", "viewer")
    assert role.exit_code == 0 and "'olga' is now viewer" in role.stdout
    assert client.get("/api/v1/items").status_code == 401
    assert _log_in(client, "olga").json()["role"] == "viewer"
    new = "another long secret"
    changed = _conveyor(
        home, "users", "passwd", "olga", "--password-stdin", "--temporary", stdin=new
    )
    assert changed.exit_code == 0 and "must be changed at the next login" in changed.stdout
    assert client.get("/api/v1/items").status_code == 401
    assert _log_in(client, "olga").status_code == 401
    assert _log_in(client, "olga", new).json()["must_change_password"] is True


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["users", "disable", "root"], "last enabled admin"),
        (["users", "role", "root", "viewer"], "last enabled admin"),
        (["users", "role", "olga", "boss"], "role must be one of"),
        (["users", "disable", "nobody"], "no user named 'nobody'"),
        (["tokens", "revoke", "999"], "no API token with id 999"),
        (["tokens", "revoke", "nameless"], "no active API tokens are named 'nameless'"),
        (["tokens", "create", "t", "--expires-in", "1y"], "m, h, d or w"),
        (["tokens", "create", "t", "--expires-in", "0d"], "above 0"),
    ],
)
def test_management_mistakes_exit_2_with_a_message(  # type: ignore[no-untyped-def]
    home: Path, arguments: list[str], message: str
) -> None:
    _add(home, "root", "admin")
    _add(home, "olga")
    result = _conveyor(home, *arguments)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_tokens_list_revoke_and_expiry(home: Path, api) -> None:  # type: ignore[no-untyped-def]
    made = _conveyor(home, "tokens", "create", "ci", "--role", "viewer", "--expires-in", "30d")
    assert made.exit_code == 0 and "expires" in made.stdout
    token = made.stdout.rstrip("\n").splitlines()[-1]
    assert _conveyor(home, "tokens", "create", "ci", "--role", "viewer").exit_code == 0
    client = api()
    client.headers["Authorization"] = f"Bearer {token}"
    assert client.get("/api/v1/items").status_code == 200
    listed = _conveyor(home, "tokens", "list").stdout
    assert listed.count(" ci ") == 2 and "active" in listed and token not in listed
    ambiguous = _conveyor(home, "tokens", "revoke", "ci")
    assert ambiguous.exit_code == 2 and "2 active API tokens are named 'ci'" in ambiguous.stderr
    revoked = _conveyor(home, "tokens", "revoke", "1")
    assert revoked.exit_code == 0 and "revoked token 1 ('ci', viewer)" in revoked.stdout
    assert client.get("/api/v1/items").status_code == 401
    assert "revoked" not in _conveyor(home, "tokens", "list").stdout
    assert "revoked" in _conveyor(home, "tokens", "list", "--revoked").stdout
    assert _conveyor(home, "tokens", "revoke", "ci").exit_code == 0  # now only one has the name
