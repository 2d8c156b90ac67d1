"""Dataset snapshots (docs/datasets.md): every training run's data can be listed, shown with the
runs and versions that used it, and exported byte for byte, from the CLI and the API, after
the source file changed; a damaged or missing snapshot is an error, never wrong data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conveyor.api.app import create_app
from conveyor.auth.service import create_token
from conveyor.cli.app import app
from conveyor.errors import InputRejectedError
from conveyor.models.datasets import DatasetCatalog, DatasetNotFoundError
from conveyor.models.service import ModelOps
from conveyor.pipelines.heart.data import synthetic_csv
from conveyor.store import queries

FAST = {"cv_folds": 3, "candidates": "logistic_regression"}


def _train(installation, dataset: Path) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    ops = ModelOps(installation)
    submission = ops.train("heart", {"dataset": str(dataset), **FAST})
    installation.controller().run_until_idle(timeout=180)
    with installation.sessions() as session:
        item = queries.get_item(session, submission.item_id)
    assert item.status == "succeeded", item.error
    [registration] = ops.register_pending()
    return submission.item_id, registration.version


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_snapshots_list_show_export_by_digest_and_by_version(  # type: ignore[no-untyped-def]
    installation, tmp_path: Path, monkeypatch
) -> None:
    source = tmp_path / "heart.csv"
    first_bytes = synthetic_csv(90, seed=1)
    source.write_bytes(first_bytes)
    first_item, first_version = _train(installation, source)
    second_bytes = synthetic_csv(110, seed=2)
    source.write_bytes(second_bytes)  # the same file, changed: a new snapshot
    second_item, second_version = _train(installation, source)
    queued = ModelOps(installation).train("heart", {"dataset": str(source), **FAST})  # not run

    catalog = DatasetCatalog(installation.sessions, installation.storage, installation.registry)
    snapshots = catalog.snapshots()
    assert [(s.model, s.digest, s.size) for s in snapshots] == [
        ("heart", _sha(second_bytes), len(second_bytes)),
        ("heart", _sha(first_bytes), len(first_bytes)),
    ]
    newest = snapshots[0]
    assert [(r.item_id, r.version, r.status) for r in newest.runs] == [
        (second_item, second_version, "succeeded"),
        (queued.item_id, None, "queued"),
    ]
    assert newest.runs[0].run_id and newest.runs[0].source == str(source.resolve())
    assert catalog.of_version("heart", first_version).digest == _sha(first_bytes)
    assert catalog.snapshot(_sha(first_bytes)[:8]).runs[0].item_id == first_item
    with pytest.raises(InputRejectedError, match="at least 6"):
        catalog.snapshot("abc")
    with pytest.raises(DatasetNotFoundError):
        catalog.snapshot("0" * 12)
    with pytest.raises(DatasetNotFoundError, match="registered version 9"):
        catalog.of_version("heart", 9)

    monkeypatch.setenv("CONVEYOR_DATABASE_URL", str(installation.settings.resolved_database_url))
    monkeypatch.setenv("CONVEYOR_PIPELINES", ",".join(installation.settings.pipelines))
    runner = CliRunner()
    home = ["--home", str(installation.settings.home)]

    def conveyor(*arguments: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, [*home, *arguments], catch_exceptions=False)

    listed = json.loads(conveyor("datasets", "list", "--json").stdout)
    assert [(d["digest"], d["versions"]) for d in listed] == [
        (_sha(second_bytes), [second_version]),
        (_sha(first_bytes), [first_version]),
    ]
    shown = json.loads(conveyor("datasets", "show", _sha(first_bytes)[:10], "--json").stdout)
    assert [(r["item_id"], r["version"]) for r in shown["runs"]] == [(first_item, first_version)]
    exported = tmp_path / "out" / "v1.csv"
    exported.parent.mkdir()
    done = conveyor(
        "datasets", "export", "-m", "heart", "-v", str(first_version), "-o", str(exported)
    )
    assert done.exit_code == 0, done.output
    assert exported.read_bytes() == first_bytes  # the first run's data, though the file changed
    by_digest = tmp_path / "out" / "latest.csv"
    assert (
        conveyor("datasets", "export", _sha(second_bytes)[:6], "-o", str(by_digest)).exit_code == 0
    )
    assert by_digest.read_bytes() == second_bytes
    assert conveyor("datasets", "show", "nothex").exit_code == 2

    _damaged_then_gone(installation, conveyor, first_bytes, first_version, tmp_path / "out")


def test_the_api_lists_shows_and_serves_snapshots(installation, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "heart.csv"
    data = synthetic_csv(90, seed=3)
    source.write_bytes(data)
    item_id, version = _train(installation, source)
    with installation.sessions.begin() as session:
        operator_token = create_token(session, "ops", "operator")
        viewer_token = create_token(session, "look", "viewer")
    client = TestClient(create_app(installation, auth_required=True))
    viewer = {"Authorization": f"Bearer {viewer_token}"}
    operator = {"Authorization": f"Bearer {operator_token}"}

    [listed] = client.get("/api/v1/datasets", headers=viewer).json()
    assert (listed["digest"], listed["size"], listed["versions"]) == (
        _sha(data),
        len(data),
        [version],
    )
    assert listed["path"] == f"datasets/heart/{_sha(data)}.csv"
    assert client.get("/api/v1/datasets?model=movies", headers=viewer).json() == []
    shown = client.get(f"/api/v1/datasets/{_sha(data)[:8]}", headers=viewer).json()
    assert [(r["item_id"], r["version"]) for r in shown["runs"]] == [(item_id, version)]
    assert shown["runs"][0]["run_id"]
    assert shown["runs"][0]["created_at"].endswith(("Z", "+00:00"))  # UTC, with its offset
    assert shown["first_used_at"] == shown["runs"][0]["created_at"]
    assert client.get("/api/v1/datasets/ffffff0", headers=viewer).status_code == 404
    assert client.get("/api/v1/datasets/xyz", headers=viewer).status_code == 422
    url = f"/api/v1/datasets/{_sha(data)}/file"
    assert client.get(url, headers=viewer).status_code == 403
    served = client.get(url, headers=operator)
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"].startswith("text/csv")
    link = f'href="/api/v1/datasets/{_sha(data)}/file?model=heart"'
    assert link in client.get("/models/heart", headers=operator).text  # each version's data
    assert link not in client.get("/models/heart", headers=viewer).text


def _damaged_then_gone(  # type: ignore[no-untyped-def]
    installation, conveyor, data: bytes, version: int, out: Path
) -> None:
    """Damaged in storage: the export fails and leaves no file; gone: it says so."""
    damaged = installation.storage.local_path("datasets/heart", f"{_sha(data)}.csv")
    damaged.write_bytes(data.replace(b",", b";", 1))
    broken = out / "broken.csv"
    failed = conveyor("datasets", "export", _sha(data)[:8], "-o", str(broken))
    assert failed.exit_code == 2 and "damaged" in failed.output
    assert sorted(p.name for p in out.iterdir()) == ["latest.csv", "v1.csv"]
    damaged.unlink()
    catalog = DatasetCatalog(installation.sessions, installation.storage, installation.registry)
    [gone] = [s for s in catalog.snapshots() if s.digest == _sha(data)]
    assert gone.size is None and gone.versions == [version]
    missing = conveyor("datasets", "export", _sha(data)[:8], "-o", str(broken))
    assert missing.exit_code == 2 and "no longer in the storage" in missing.output
