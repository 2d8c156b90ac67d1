"""Client.submit_reference against a real `conveyor up` whose reference_roots name a shared
folder (tests/client/conftest.py): the file is processed where it lies, and a path outside the
roots raises ValidationError naming the setting."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conveyor.client import Client, ValidationError


def test_a_file_on_the_shared_mount_is_processed_by_reference(server) -> None:  # type: ignore[no-untyped-def]
    shared = server.up.log.parent / "shared"
    path = shared / f"visits-{uuid.uuid4().hex[:8]}.csv"
    path.write_text("city,visits\nOslo,3\nLima,5\nLima,5\n")
    with Client(server.url, server.tokens["operator"], timeout=30) as client:
        submitted = client.submit_reference("csv_profile", str(path), name="visits.csv")
        assert not submitted.duplicate and submitted.input == "visits.csv"
        [done] = client.wait([submitted], timeout=180, progress=False)
        assert done.succeeded, done.error
        assert (done.input_url, done.input_size) == (str(path), path.stat().st_size)
        assert done.result["rows"] == 3 and done.result["duplicate_rows"] == 1
        assert path.name not in done.artifacts
        again = client.submit_reference("csv_profile", str(path))
        assert again.duplicate and again.item_id == submitted.item_id


def test_a_path_outside_the_roots_is_refused(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "private.csv"
    outside.write_text("a,b\n1,2\n")
    refused = pytest.raises(ValidationError, match="CONVEYOR_REFERENCE_ROOTS")
    with Client(server.url, server.tokens["operator"], timeout=30) as client, refused:
        client.submit_reference("csv_profile", str(outside))
