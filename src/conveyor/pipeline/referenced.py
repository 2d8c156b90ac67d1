"""Reading an input submitted by reference, on the worker: the file stays where it is.

A local path (a shared mount every node sees) is used as is. Any other URL is opened through
fsspec; a step that needs a local path gets a copy in a temporary folder, and a worker process
keeps only its latest copy (Ray runs one task at a time per worker process, so the copy of the
item before is no longer in use).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

from conveyor.errors import PermanentStepError

CHUNK_BYTES = 8 << 20
_latest_copy: dict[str, Path] = {}
_lock = threading.Lock()


def is_local(url: str) -> bool:
    return "://" not in url


def open_input(url: str) -> BinaryIO:
    """``url`` opened for reading (no copy); a clear error when the file is gone."""
    import fsspec  # type: ignore[import-untyped]

    try:
        return fsspec.open(url, "rb").open()
    except FileNotFoundError:
        raise _gone(url) from None


def local_input(url: str, name: str) -> Path:
    """A local path to the referenced file: itself when local, else a fresh copy."""
    if is_local(url):
        path = Path(url)
        if not path.is_file():
            raise _gone(url)
        return path
    with _lock:
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        previous = _latest_copy.pop("copy", None)
        if previous is not None and previous.parent.name.endswith(key) and previous.exists():
            _latest_copy["copy"] = previous
            return previous
        if previous is not None:
            shutil.rmtree(previous.parent, ignore_errors=True)
        copy = Path(tempfile.mkdtemp(prefix="conveyor-reference-", suffix=f"-{key}")) / name
        _download(url, copy)
        _latest_copy["copy"] = copy
        return copy


def _download(url: str, target: Path) -> None:
    try:
        with open_input(url) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK_BYTES)
    except BaseException:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise


def _gone(url: str) -> PermanentStepError:
    return PermanentStepError(
        f"the input submitted by reference is no longer at {url!r}; put it back, or submit it "
        "again where it now lies."
    )
