"""Issue 13: step errors and step logs showed every viewer server paths and full tracebacks.
Viewers now get the message without traceback, with storage paths relative and other server
paths replaced; operators and admins see everything; an unexpected exception never reaches the
client. On SQLite and PostgreSQL, through the API, the exports and the web UI."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.api.disclosure import (
    HIDDEN_TRACEBACK,
    SERVER_PATH,
    redact_paths,
    strip_tracebacks,
)
from conveyor.auth.service import create_token
from support.leaky_pipelines import OUTSIDE_FILE

TRACEBACK = "Traceback (most recent call last):"
CHAINED_LOG = """\
2026-11-28 04:00:00,000 INFO conveyor.step.leaky.load_model: loading weights
2026-11-28 04:00:00,001 ERROR conveyor.step: Traceback (most recent call last):
  File "/srv/app/steps.py", line 3, in load
    open(path)
    ~~~~^^^^^^
FileNotFoundError: [Errno 2] No such file or directory: '/srv/models/a.bin'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/srv/app/steps.py", line 5, in load
    raise RuntimeError("no model")
RuntimeError: no model
after the traceback"""


def test_tracebacks_become_one_line_and_keep_their_messages() -> None:
    shown = strip_tracebacks(CHAINED_LOG)
    assert TRACEBACK not in shown and 'File "' not in shown and "~~~~" not in shown
    assert shown.count(HIDDEN_TRACEBACK) == 2
    assert "ERROR conveyor.step: " + HIDDEN_TRACEBACK in shown
    assert "FileNotFoundError: [Errno 2]" in shown and "RuntimeError: no model" in shown
    assert shown.startswith("2026-11-28 04:00:00,000 INFO")
    assert shown.endswith("after the traceback")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("open '/data/home/storage/work/x/a.csv'", "open 'work/x/a.csv'"),
        ("open '/etc/conveyor/secret.toml'", f"open '{SERVER_PATH}'"),
        ('File "/usr/lib/python3.11/json/decoder.py"', f'File "{SERVER_PATH}"'),
        ("see https://example.org/a/b and s3://bucket/a/b", None),
        ("on 2026/11/28 at 3 km/h, and/or 1/2", None),
    ],
)
def test_paths_under_storage_become_relative_and_others_are_replaced(
    text: str, shown: str | None
) -> None:
    assert redact_paths(text, "/data/home/storage") == (text if shown is None else shown)


@pytest.fixture
def leaky_installation(tmp_path: Path, database_url: str, ray_cluster: str):  # type: ignore[no-untyped-def]
    from conveyor.installation import Installation
    from conveyor.settings import load_settings

    settings = load_settings(
        tmp_path / "home",
        database_url=database_url,
        pipelines=["support.leaky_pipelines"],
        poll_interval_seconds=0.02,
    )
    built = Installation(settings)
    yield built
    built.close()


@pytest.fixture
def clients(leaky_installation):  # type: ignore[no-untyped-def]
    """Clients of each role, and the two failed items: one read inside storage, one outside."""
    with leaky_installation.sessions.begin() as session:
        tokens = {role: create_token(session, role, role) for role in ("viewer", "operator")}
        tokens["admin"] = create_token(session, "root", "admin")
    app = create_app(leaky_installation, auth_required=True)
    by_role = {}
    for role, token in tokens.items():
        by_role[role] = TestClient(app)
        by_role[role].headers["Authorization"] = f"Bearer {token}"
    items = {}
    for where in ("inside", "outside"):
        record = {"pipeline": "leaky", "record": {"read": where}}
        items[where] = by_role["operator"].post("/api/v1/items", json=record).json()["item_id"]
    leaky_installation.controller().run_until_idle(timeout=120)
    return by_role, items, leaky_installation.storage.root


def _texts(detail: dict) -> list[str]:  # type: ignore[type-arg]
    runs = detail["steps"]
    return [detail["error"], *(r["error"] for r in runs), *(r["logs"] for r in runs)]


def test_viewers_see_messages_without_tracebacks_or_server_paths(clients) -> None:  # type: ignore[no-untyped-def]
    by_role, items, storage_root = clients
    viewer = by_role["viewer"]
    inside = viewer.get(f"/api/v1/items/{items['inside']}").json()
    outside = viewer.get(f"/api/v1/items/{items['outside']}").json()
    assert inside["status"] == outside["status"] == "failed"
    for text in _texts(inside) + _texts(outside):
        assert TRACEBACK not in text and 'File "' not in text
        assert storage_root not in text and OUTSIDE_FILE not in text
        assert "/site-packages/" not in text
    assert "FileNotFoundError" in inside["error"] and "work/" in inside["error"]
    assert inside["error"].endswith("/missing-weights.bin'")
    assert f"'{SERVER_PATH}'" in outside["error"]
    assert HIDDEN_TRACEBACK in outside["steps"][0]["logs"]
    assert "loading weights from [server path]" in outside["steps"][0]["logs"]

    listed = viewer.get("/api/v1/items", params={"pipeline": "leaky"}).json()["items"]
    assert {i["error"] for i in listed} == {inside["error"], outside["error"]}
    for format in ("json", "csv"):
        exported = viewer.get("/api/v1/results", params={"pipeline": "leaky", "format": format})
        assert exported.status_code == 200
        assert storage_root not in exported.text and OUTSIDE_FILE not in exported.text
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["error"] for r in rows} == {inside["error"], outside["error"]}


def test_the_web_item_page_shows_viewers_the_redacted_text(clients) -> None:  # type: ignore[no-untyped-def]
    by_role, items, storage_root = clients
    for where in ("inside", "outside"):
        page = by_role["viewer"].get(f"/items/{items[where]}")
        assert page.status_code == 200 and "FileNotFoundError" in page.text
        assert TRACEBACK not in page.text and storage_root not in page.text
        assert OUTSIDE_FILE not in page.text
    operator_page = by_role["operator"].get(f"/items/{items['outside']}")
    assert TRACEBACK in operator_page.text and OUTSIDE_FILE in operator_page.text


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_operators_and_admins_see_the_full_traceback(clients, role: str) -> None:  # type: ignore[no-untyped-def]
    by_role, items, storage_root = clients
    inside = by_role[role].get(f"/api/v1/items/{items['inside']}").json()
    outside = by_role[role].get(f"/api/v1/items/{items['outside']}").json()
    assert storage_root in inside["error"] and OUTSIDE_FILE in outside["error"]
    logs = outside["steps"][0]["logs"]
    assert TRACEBACK in logs and 'File "' in logs and "leaky_pipelines.py" in logs
    exported = by_role[role].get("/api/v1/results", params={"pipeline": "leaky"}).json()
    assert OUTSIDE_FILE in " ".join(row["error"] for row in exported)


def test_an_unexpected_exception_sends_no_traceback(leaky_installation) -> None:  # type: ignore[no-untyped-def]
    app = create_app(leaky_installation, auth_required=False)
    secret = f"{leaky_installation.settings.home}/conveyor.db: password=hunter2"

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError(secret)

    answer = TestClient(app, raise_server_exceptions=False).get("/api/v1/boom")
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["code"] == "internal_error" and error["details"] is None
    assert "hunter2" not in answer.text and str(leaky_installation.settings.home) not in answer.text
    assert TRACEBACK not in answer.text and "RuntimeError" not in answer.text
