"""What a step sees: its input, its work folder and JSON artifacts, on a local folder and on
remote storage (fsspec's in-memory file system stands for S3 and friends)."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from conveyor.pipeline import StepContext


def _context(storage_url: str, input_name: str | None = None) -> StepContext:
    return StepContext(
        item_id="item",
        pipeline="p",
        pipeline_version="1",
        step="s",
        attempt=1,
        storage_url=storage_url,
        work_dir="work/item",
        input_name=input_name,
    )


@pytest.mark.parametrize("where", ["local", "remote"])
def test_json_artifacts_round_trip_through_storage(where: str, tmp_path: Path) -> None:
    url = str(tmp_path) if where == "local" else f"memory://conveyor-{uuid.uuid4().hex}"
    context = _context(url)
    name = context.save_json("scores.json", {"mean": np.float32(0.5), 3: [1, 2]})
    assert context.load_json(name) == {"mean": 0.5, "3": [1, 2]}
    if where == "local":
        assert (tmp_path / "work/item/scores.json").is_file()


def test_the_input_file_is_read_through_a_local_path(tmp_path: Path) -> None:
    context = _context(f"memory://conveyor-{uuid.uuid4().hex}", input_name="in.txt")
    context.save_artifact("in.txt", b"hello")
    assert context.input_path().read_bytes() == b"hello"  # downloaded: the storage is remote


def test_a_record_item_has_no_input_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="record item and has no input file"):
        _context(str(tmp_path)).input_path()
