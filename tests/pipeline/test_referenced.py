"""A step's view of an input submitted by reference (pipeline/referenced.py): a local file is
used where it lies; a remote one (fsspec's in-memory file system stands for S3) is read as a
stream or through a temporary copy, one per worker process; a file gone is a permanent error."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from conveyor.errors import PermanentStepError
from conveyor.pipeline import StepContext


def _context(tmp_path: Path, input_url: str, name: str = "in.csv") -> StepContext:
    return StepContext(
        item_id="item",
        pipeline="p",
        pipeline_version="1",
        step="s",
        attempt=1,
        storage_url=str(tmp_path / "storage"),
        work_dir="work/item",
        input_name=name,
        input_url=input_url,
    )


def test_a_local_reference_is_the_file_itself(tmp_path: Path) -> None:
    original = tmp_path / "shared" / "in.csv"
    original.parent.mkdir()
    original.write_text("a,b\n1,2\n")
    context = _context(tmp_path, str(original))
    assert context.input_path() == original
    with context.open_input() as stream:
        assert stream.read() == b"a,b\n1,2\n"
    assert not (tmp_path / "storage" / "work" / "item").exists()  # nothing copied


def test_a_remote_reference_is_streamed_or_copied_once_per_process(tmp_path: Path) -> None:
    bucket = f"memory://bucket-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{bucket}/first.csv", b"x\n1\n")
    fs.pipe(f"{bucket}/second.csv", b"x\n2\n")
    first = _context(tmp_path, f"{bucket}/first.csv", "first.csv")
    with first.open_input() as stream:
        assert stream.read() == b"x\n1\n"
    copy = first.input_path()
    assert copy.name == "first.csv" and copy.read_bytes() == b"x\n1\n"
    assert first.input_path() == copy  # a later step of the same item reuses the copy
    second = _context(tmp_path, f"{bucket}/second.csv", "second.csv")
    assert second.input_path().read_bytes() == b"x\n2\n"
    assert not copy.exists() and not copy.parent.exists()  # the process keeps one copy


def test_a_reference_gone_before_the_step_fails_the_item_saying_where(tmp_path: Path) -> None:
    for url in (str(tmp_path / "gone.csv"), f"memory://bucket-{uuid.uuid4().hex}/gone.csv"):
        context = _context(tmp_path, url)
        with pytest.raises(PermanentStepError, match="no longer at"):
            context.input_path()
        with pytest.raises(PermanentStepError, match="no longer at"):
            context.open_input()
