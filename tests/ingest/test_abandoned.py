"""Work folders a dead upload left are removed once a day old, and only those: a folder an item
names stays whatever its age, a young one stays (its upload may still be arriving), a folder
whose name has no time stays."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from conveyor.ingest.abandoned import made_at, remove_abandoned_work_dirs
from conveyor.installation import Installation
from conveyor.retention.maintenance import run_maintenance
from conveyor.retention.policy import policy_from_settings
from conveyor.settings import load_settings
from conveyor.store.models import Item, utcnow


def _folder(storage_root: Path, name: str) -> str:
    (storage_root / "work" / name).mkdir(parents=True)
    (storage_root / "work" / name / "part.bin").write_bytes(b"half an upload")
    return f"work/{name}"


def test_only_old_folders_no_item_names_go(tmp_path: Path, database_url: str) -> None:
    settings = load_settings(
        tmp_path / "home", database_url=database_url, pipelines=["support.upload_pipelines"]
    )
    installation = Installation(settings)
    storage, root = installation.storage, tmp_path / "home" / "storage"
    upload = tmp_path / "kept.bin"
    upload.write_bytes(b"a whole upload")
    kept = installation.submitter.submit_file("sizes", upload)
    later = utcnow() + timedelta(days=2)  # the submitted item's folder is old by then too
    stamp = (utcnow() - timedelta(hours=1)).strftime("%Y%m%dT%H%M%S.%fZ")
    young = _folder(root, f"{stamp}_young.bin")
    odd = _folder(root, "not-a-stamp_upload.bin")
    dead = _folder(root, "20260101T000000.000000Z-1_big.bin")
    assert made_at(dead) is not None and made_at(odd) is None
    assert remove_abandoned_work_dirs(storage, installation.sessions, utcnow()) == 1
    remaining = set(storage.list_work_dirs())
    assert dead not in remaining and {young, odd} <= remaining
    policy = policy_from_settings(settings.retention)
    report = run_maintenance(installation.sessions, policy, later, storage=storage)
    assert report.pruned["abandoned_work_dirs"] == 1  # the young one, two days on
    with installation.sessions() as session:
        item = session.get(Item, kept.item_id)
        assert item is not None and item.work_dir in storage.list_work_dirs()
    assert odd in storage.list_work_dirs()
    installation.close()
