"""Files submitted by reference (docs/batch.md): a CSV on a shared mount and one in an S3
bucket (moto's server, started here) become csv_profile items that the workers read where they
lie; nothing is copied into the work folder, and the item records the size and the file's
identity. References outside ``reference_roots`` are refused with the setting to change."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import InputRejectedError
from conveyor.ingest.references import ReferenceRefusedError
from conveyor.installation import Installation
from conveyor.settings import load_settings
from conveyor.store import queries
from support.up import free_port

BUCKET = "shared-data"
S3_PORT = free_port()
# Set while the tests are collected, before the session's Ray starts: its workers read
# s3:// with this environment (as deployed workers get their storage credentials).
S3_ENVIRONMENT = {
    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
    "AWS_ACCESS_KEY_ID": "conveyor-test",
    "AWS_SECRET_ACCESS_KEY": "conveyor-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
for _name, _value in S3_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

ROWS = [("alpha", "1.5", "x"), ("beta", "2.5", "y"), ("gamma", "", "x"), ("beta", "2.5", "y")]
CSV = "name,score,group\n" + "".join(",".join(row) + "\n" for row in ROWS)


@pytest.fixture(scope="module")
def s3_bucket() -> Iterator[str]:
    """moto's S3 server on the port the environment names; a bucket holding visits.csv."""
    import s3fs
    from moto.server import ThreadedMotoServer

    if os.environ["AWS_ENDPOINT_URL"] != S3_ENVIRONMENT["AWS_ENDPOINT_URL"]:
        pytest.fail("AWS_ENDPOINT_URL was set before these tests; unset it to run them")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=S3_PORT, verbose=False)
    server.start()
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    fs.pipe(f"{BUCKET}/in/visits.csv", CSV.encode())
    fs.pipe(f"{BUCKET}/private/secret.csv", CSV.encode())
    yield f"s3://{BUCKET}"
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A folder outside Conveyor's home, as a shared mount every node would see."""
    folder = tmp_path / "mnt" / "shared"
    folder.mkdir(parents=True)
    (folder / "visits.csv").write_text(CSV)
    return folder


def _installation(home: Path, database_url: str, roots: list[str]) -> Installation:
    settings = load_settings(
        home,
        database_url=database_url,
        reference_roots=roots,
        lease_seconds=5.0,
        poll_interval_seconds=0.02,
    )
    return Installation(settings)


@pytest.fixture
def referencing(
    tmp_path: Path, database_url: str, ray_cluster: str, shared: Path, s3_bucket: str
) -> Iterator[Installation]:
    built = _installation(tmp_path / "home", database_url, [str(shared), f"{s3_bucket}/in"])
    yield built
    built.close()


def _profile(installation: Installation, item_id: str) -> dict[str, Any]:
    with installation.sessions() as session:
        item = queries.get_item(session, item_id)
        result = queries.result_of(session, item_id)
    assert item.status == "succeeded", item.error
    assert result is not None
    return result.result


def _check_profile(result: dict[str, Any]) -> None:
    assert (result["rows"], result["columns"], result["duplicate_rows"]) == (len(ROWS), 3, 1)
    assert result["numeric_columns"] == ["score"]
    assert result["incomplete_rows"] == 1


def test_shared_path_and_s3_references_are_profiled_where_they_lie(
    referencing: Installation, shared: Path, s3_bucket: str
) -> None:
    submitter = referencing.submitter
    on_mount = submitter.submit_reference("csv_profile", str(shared / "visits.csv"))
    in_bucket = submitter.submit_reference("csv_profile", f"{s3_bucket}/in/visits.csv")
    assert not on_mount.duplicate and not in_bucket.duplicate

    referencing.controller().run_until_idle(timeout=120)

    for submission, url in (
        (on_mount, str((shared / "visits.csv").resolve())),
        (in_bucket, f"{s3_bucket}/in/visits.csv"),
    ):
        _check_profile(_profile(referencing, submission.item_id))
        with referencing.sessions() as session:
            item = queries.get_item(session, submission.item_id)
        assert (item.kind, item.input_url, item.input_size) == ("file", url, len(CSV))
        assert item.input_name == "visits.csv"
        # the work folder holds what the steps wrote, never a copy of the input
        assert "visits.csv" not in referencing.storage.list_files(item.work_dir)
    assert (shared / "visits.csv").read_text() == CSV  # the original is left as it was


def test_the_same_unchanged_reference_is_a_duplicate_and_a_changed_one_is_not(
    referencing: Installation, shared: Path
) -> None:
    submitter = referencing.submitter
    first = submitter.submit_reference("csv_profile", str(shared / "visits.csv"))
    again = submitter.submit_reference("csv_profile", f"file://{shared}/visits.csv")
    assert again.duplicate and again.item_id == first.item_id
    (shared / "visits.csv").write_text(CSV + "delta,4,z\n")
    changed = submitter.submit_reference("csv_profile", str(shared / "visits.csv"))
    assert not changed.duplicate and changed.item_id != first.item_id


def test_references_outside_the_roots_are_refused_saying_what_to_change(
    referencing: Installation, shared: Path, s3_bucket: str, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.csv"
    outside.write_text(CSV)
    (shared / "escape.csv").symlink_to(outside)
    (shared / "up").symlink_to(tmp_path)
    cases = {
        str(outside): "outside every allowed root",
        f"{shared}/../elsewhere.csv": "'..' segments",
        str(shared / "escape.csv"): "through a symbolic link",
        str(shared / "up" / "elsewhere.csv"): "through a symbolic link",
        "file:///etc/passwd": "outside every allowed root",
        "/etc/passwd": "outside every allowed root",
        "visits.csv": "not an absolute path",
        f"{s3_bucket}/private/secret.csv": "outside every allowed root",
        f"{s3_bucket}/in/../private/secret.csv": "'..' segments",
        f"{s3_bucket}/inbox.csv": "outside every allowed root",  # a prefix, not a folder
        f"simplecache::{s3_bucket}/in/visits.csv": "chains file systems",
        str(shared / "missing.csv"): "no readable file",
        f"{shared}/\ud800.csv": "not valid UTF-8",  # JSON may carry a lone surrogate
        f"{s3_bucket}/in/missing.csv": "no file there",
    }
    for location, problem in cases.items():
        with pytest.raises(ReferenceRefusedError) as refused:
            referencing.submitter.submit_reference("csv_profile", location)
        assert problem in str(refused.value), (location, str(refused.value))
        if "outside" in problem:
            assert "CONVEYOR_REFERENCE_ROOTS" in str(refused.value)
    with referencing.sessions() as session:
        assert queries.list_items(session, queries.ItemFilter(), 10) == []


def test_references_are_refused_unless_roots_are_configured(
    tmp_path: Path, database_url: str, shared: Path
) -> None:
    installation = _installation(tmp_path / "home", database_url, [])
    try:
        with pytest.raises(ReferenceRefusedError, match="references are turned off"):
            installation.submitter.submit_reference("csv_profile", str(shared / "visits.csv"))
        with pytest.raises(InputRejectedError, match="takes record inputs"):
            installation.submitter.submit_reference("noop", str(shared / "visits.csv"))
    finally:
        installation.close()
