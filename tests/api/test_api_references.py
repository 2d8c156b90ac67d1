"""Submitting by reference over HTTP (POST /api/v1/items/references) and from the command line
(conveyor submit --ref): only a JSON body crosses, the item is processed where the file lies,
and a refused reference answers 422 naming the setting to change."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conveyor.api.app import create_app
from conveyor.auth.service import create_token
from conveyor.cli.app import app
from conveyor.installation import Installation
from conveyor.settings import load_settings

CSV = "city,visits\nOslo,3\nLima,5\n"


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "visits.csv").write_text(CSV)
    return folder


@pytest.fixture
def api(tmp_path: Path, database_url: str, ray_cluster: str, shared: Path) -> Iterator[TestClient]:
    settings = load_settings(
        tmp_path / "home", database_url=database_url, reference_roots=[str(shared)]
    )
    installation = Installation(settings)
    with installation.sessions.begin() as session:
        operator_token = create_token(session, "ops", "operator")
        viewer_token = create_token(session, "look", "viewer")
    client = TestClient(create_app(installation, auth_required=True))
    client.headers["Authorization"] = f"Bearer {operator_token}"
    client.viewer_token = viewer_token  # type: ignore[attr-defined]
    client.installation = installation  # type: ignore[attr-defined]
    yield client
    installation.close()


def test_a_reference_is_submitted_processed_and_shown(api: TestClient, shared: Path) -> None:
    body = {"pipeline": "csv_profile", "url": str(shared / "visits.csv")}
    created = api.post("/api/v1/items/references", json=body)
    assert created.status_code == 201, created.text
    item_id = created.json()["item_id"]
    assert created.json()["input"] == "visits.csv"
    again = api.post("/api/v1/items/references", json=body | {"name": "same file"})
    assert (again.status_code, again.json()["item_id"]) == (200, item_id)

    api.installation.controller().run_until_idle(timeout=120)  # type: ignore[attr-defined]
    shown = api.get(f"/api/v1/items/{item_id}").json()
    assert shown["status"] == "succeeded" and shown["result"]["rows"] == 2
    assert (shown["input_url"], shown["input_size"]) == (str(shared / "visits.csv"), len(CSV))
    assert "visits.csv" not in shown["artifacts"]  # never copied
    viewer = {"Authorization": f"Bearer {api.viewer_token}"}  # type: ignore[attr-defined]
    seen = api.get(f"/api/v1/items/{item_id}", headers=viewer).json()
    assert seen["input_url"] == "[server path]"  # viewers see no server paths
    page = api.get(f"/ui/items/{item_id}")  # the item page's panel
    assert page.status_code == 200 and f"<code>{shared / 'visits.csv'}</code>" in page.text


def test_refused_references_answer_422_and_viewers_cannot_submit(
    api: TestClient, shared: Path, tmp_path: Path
) -> None:
    (tmp_path / "private.csv").write_text(CSV)
    refused = api.post(
        "/api/v1/items/references",
        json={"pipeline": "csv_profile", "url": str(tmp_path / "private.csv")},
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "reference_refused"
    assert "outside every allowed root" in error["message"]
    assert "CONVEYOR_REFERENCE_ROOTS" in error["message"]
    traversal = api.post(
        "/api/v1/items/references",
        json={"pipeline": "csv_profile", "url": f"{shared}/../private.csv"},
    )
    assert traversal.json()["error"]["code"] == "reference_refused"
    unknown = api.post("/api/v1/items/references", json={"pipeline": "nope", "url": "/x"})
    assert unknown.status_code == 404
    extra = api.post(
        "/api/v1/items/references",
        json={"pipeline": "csv_profile", "url": str(shared / "visits.csv"), "bytes": "..."},
    )
    assert extra.status_code == 422
    viewer = {"Authorization": f"Bearer {api.viewer_token}"}  # type: ignore[attr-defined]
    body = {"pipeline": "csv_profile", "url": str(shared / "visits.csv")}
    assert api.post("/api/v1/items/references", json=body, headers=viewer).status_code == 403


def test_conveyor_submit_ref(
    tmp_path: Path, database_url: str, ray_cluster: str, shared: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", database_url)
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    target = str(shared / "visits.csv")

    refused = runner.invoke(app, [*home, "submit", "-p", "csv_profile", "--ref", target])
    assert refused.exit_code != 0
    assert "references are turned off" in refused.output

    monkeypatch.setenv("CONVEYOR_REFERENCE_ROOTS", f"{shared},s3://unused-bucket/data")
    ids = tmp_path / "ids.txt"
    done = runner.invoke(
        app, [*home, "submit", "-p", "csv_profile", "--ref", target, "--wait", "-o", str(ids)]
    )
    assert done.exit_code == 0, done.output
    [item_id] = ids.read_text().split()
    shown = json.loads(runner.invoke(app, [*home, "show", item_id, "--json"]).stdout)
    assert shown["status"] == "succeeded" and shown["input_url"] == target
    assert shown["result"]["rows"] == 2


def test_a_terabyte_reference_is_accepted_with_its_size_and_never_uploaded(
    api: TestClient, shared: Path
) -> None:
    huge = shared / "huge.csv"
    with huge.open("w") as out:  # real text where the pipeline's probe reads, then a hole
        out.write("city,visits\n" + "Oslo,3\n" * 20_000)
    size = 1 << 40
    os.truncate(huge, size)  # sparse: a terabyte on paper, a few blocks on disk
    body = {"pipeline": "csv_profile", "url": str(huge)}
    created = api.post("/api/v1/items/references", json=body)
    assert created.status_code == 201, created.text
    assert size > api.installation.settings.max_upload_bytes  # type: ignore[attr-defined]
    shown = api.get(f"/api/v1/items/{created.json()['item_id']}").json()
    assert (shown["input_size"], shown["status"], shown["artifacts"]) == (size, "queued", [])
