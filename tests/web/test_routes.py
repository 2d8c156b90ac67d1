"""The web pages over HTTP (no browser): logins, sub-paths, escaping, roles, downloads."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.auth.service import add_user
from conveyor.web.routes import safe_next

PASSWORD = "correct horse battery"
ROOT = "/conveyor"
HOSTILE = "<script>alert(1)</script>.csv"


@pytest.fixture
def app(installation):  # type: ignore[no-untyped-def]
    with installation.sessions.begin() as session:
        add_user(session, "ada", PASSWORD, "admin")
        add_user(session, "vic", PASSWORD, "viewer")
    return create_app(installation, auth_required=True, root_path=ROOT)


def signed_in(app, name: str = "ada") -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app, root_path=ROOT)
    me = client.post(f"{ROOT}/api/v1/auth/login", json={"name": name, "password": PASSWORD})
    assert me.status_code == 200
    client.headers["X-CSRF-Token"] = me.json()["csrf_token"]
    return client


def upload(client: TestClient, name: str, data: bytes) -> str:
    files = {"file": (name, data, "text/csv")}
    response = client.post(f"{ROOT}/api/v1/items", files=files, data={"pipeline": "csv_profile"})
    assert response.status_code == 201, response.text
    return response.json()["item_id"]


def test_pages_send_strangers_to_the_login_page_under_the_root_path(app) -> None:  # type: ignore[no-untyped-def]
    stranger = TestClient(app, root_path=ROOT)
    for page in ("/", "/items?status=failed", "/upload", "/results", "/items/abc"):
        response = stranger.get(ROOT + page, follow_redirects=False)
        assert response.status_code == 303, page
        assert response.headers["location"].startswith(f"{ROOT}/login?next=%2Fconveyor%2F")
    poll = stranger.get(f"{ROOT}/ui/items", headers={"HX-Request": "true"})
    assert poll.status_code == 401 and poll.headers["HX-Redirect"].startswith(f"{ROOT}/login")
    login = stranger.get(f"{ROOT}/login?next=//evil.example/")
    assert login.status_code == 200 and 'data-next="/conveyor/"' in login.text
    assert 'type="password"' in login.text and "value=" not in login.text.split("<form")[1]


def test_next_after_login_stays_on_this_site() -> None:
    assert safe_next(ROOT, "/conveyor/items?status=failed") == "/conveyor/items?status=failed"
    for hostile in ("//evil.example", "https://evil.example/", "/conveyor//evil", "/conveyor/\\x"):
        assert safe_next(ROOT, hostile) == "/conveyor/"
    assert safe_next("", "/items") == "/items"


def test_every_page_renders_and_escapes_user_text(app) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app)
    item_id = upload(client, HOSTILE, b"a,b\n1,2\n")
    for page in ("/", "/ui/dashboard", "/upload", "/items", "/results", f"/items/{item_id}"):
        response = client.get(ROOT + page)
        assert response.status_code == 200, page
        assert "<script>alert" not in response.text, page
        assert f'href="{ROOT}/static/app.css' in response.text or page.startswith("/ui"), page
    rows = client.get(f"{ROOT}/ui/items", params={"q": "script"}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in rows and item_id in rows
    assert client.get(f"{ROOT}/items/ffffffffffff").status_code == 404
    assert client.get(f"{ROOT}/results?pipeline=nope").status_code == 404
    assert client.get(f"{ROOT}/items", params={"cursor": "garbage!"}).status_code == 200


def test_viewers_see_no_upload_or_action_buttons(app) -> None:  # type: ignore[no-untyped-def]
    admin = signed_in(app)
    item_id = upload(admin, "t.csv", b"a\n1\n")
    assert "data-post=" in admin.get(f"{ROOT}/items").text
    viewer = signed_in(app, "vic")
    items = viewer.get(f"{ROOT}/items").text
    assert item_id in items and "data-post=" not in items and f"{ROOT}/upload" not in items
    assert "can look but not submit" in viewer.get(f"{ROOT}/upload").text


def test_item_csv_download_and_static_files(app) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app)
    item_id = upload(client, "t.csv", b"a,b\n1,2\n3,4\n")
    assert client.get(f"{ROOT}/items/{item_id}/result.csv").status_code == 404  # not run yet
    app.state.installation.controller().run_until_idle(timeout=120)
    response = client.get(f"{ROOT}/items/{item_id}/result.csv")
    assert response.headers["content-disposition"] == f'attachment; filename="{item_id}.csv"'
    [row] = list(csv.DictReader(io.StringIO(response.text)))
    assert row["item_id"] == item_id and row["result.rows"] == "2"
    export_form = {"pipeline": "csv_profile", "format": "csv", "created_after": "2000-01-01T00:00"}
    exported = client.get(f"{ROOT}/api/v1/results", params=export_form)  # as datetime-local sends
    assert exported.status_code == 200 and item_id in exported.text
    page = client.get(f"{ROOT}/items/{item_id}").text
    assert f'href="{ROOT}/api/v1/items/{item_id}/result"' in page and "table profile" in page
    for asset in (
        "app.js",
        "app.css",
        "vendor/htmx-2.0.11.min.js",
        "vendor/uPlot-1.6.32.iife.min.js",
        "pipelines/calls/call_player.js",  # a pipeline's own (PipelineHooks.static_assets)
    ):
        assert client.get(f"{ROOT}/static/{asset}").status_code == 200, asset


def test_ui_routes_stay_out_of_the_api_schema(app) -> None:  # type: ignore[no-untyped-def]
    paths = TestClient(app).get("/api/openapi.json").json()["paths"]
    assert "/api/v1/items" in paths and "/healthz" in paths  # the schema is not empty
    assert all(path.startswith(("/api/", "/healthz", "/readyz", "/metrics")) for path in paths)


def test_without_authentication_pages_open_directly(installation) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(installation, auth_required=False))
    assert client.get("/").status_code == 200
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"


def test_dashboard_shows_hardware_queue_depth_and_step_durations(app) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(app, "vic")
    empty = client.get(f"{ROOT}/").text
    assert "No step finished in the last hour" in empty and 'id="queue-depth-chart"' in empty
    upload(signed_in(app), "t.csv", b"a,b\n1,2\n")
    app.state.installation.controller().run_until_idle(timeout=120)
    panel = client.get(f"{ROOT}/ui/dashboard").text
    for gauge in ("CPU", "Memory", "Storage volume"):
        assert f'data-gauge="{gauge}"' in panel, gauge
    assert "No GPUs found on this host" in panel or 'data-gauge="GPU ' in panel
    steps = re.findall(r'data-pipeline="csv_profile" data-step="(\w+)"', panel)
    assert steps == app.state.installation.registry.get("csv_profile").order
    data = json.loads(re.search(r'id="chart-data">(.*?)</script>', panel).group(1))
    assert len(data["queue_depth"]) == 60 and data["queue_depth"][-1] == 0
    assert sum(data["throughput"]) == 1
