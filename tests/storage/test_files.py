import io

import pytest

from conveyor.errors import InputRejectedError
from conveyor.storage.files import Storage


def test_inbox_file_moves_into_its_own_work_folder(tmp_path) -> None:
    storage = Storage(str(tmp_path))
    storage.put_in_inbox("a b; c.txt", b"hello")
    [entry] = storage.list_inbox()
    work_dir, stored = storage.take_from_inbox(entry.name)
    assert stored == "a b; c.txt" and work_dir.startswith("work/") and work_dir.endswith(stored)
    assert storage.list_inbox() == []
    assert storage.list_files(work_dir) == ["a b; c.txt"]


def test_paths_cannot_leave_the_storage_root(tmp_path) -> None:
    storage = Storage(str(tmp_path / "root"))
    with pytest.raises(InputRejectedError):
        storage.open("work/x", "../../../../etc/passwd")
    work_dir, stored, _, _ = storage.store_stream(io.BytesIO(b"x"), "../../escape.txt")
    assert stored == "escape.txt"
    assert (tmp_path / "root" / work_dir / "escape.txt").exists()


def test_stream_over_the_limit_is_rejected_and_leaves_nothing(tmp_path) -> None:
    storage = Storage(str(tmp_path))
    with pytest.raises(InputRejectedError, match="larger than the limit"):
        storage.store_stream(io.BytesIO(b"x" * 3_000_000), "big.bin", max_bytes=2_000_000)
    assert storage.list_work_dirs() == []


def test_works_on_other_fsspec_file_systems() -> None:
    storage = Storage("memory://conveyor-test")
    work_dir, stored, digest, size = storage.store_stream(io.BytesIO(b"abc"), "m.txt")
    assert size == 3 and len(digest) == 64
    assert storage.local_path(work_dir, stored) is None
    with storage.open(work_dir, stored) as stream:
        assert stream.read() == b"abc"
