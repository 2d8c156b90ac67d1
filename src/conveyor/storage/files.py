"""Storage: the inbox, per-item work folders and artifacts, on any fsspec file system."""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from conveyor.errors import InputRejectedError, InputTooLargeError
from conveyor.storage.names import safe_file_name

INBOX = "inbox"
WORK = "work"
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class InboxEntry:
    name: str
    size: int
    modified_at: float


class Storage:
    """All file access of Conveyor. Paths given to it are relative to the storage root and are
    checked never to leave it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/") or "/"
        self.is_local = isinstance(self.fs, LocalFileSystem)
        for folder in (INBOX, WORK):
            self.fs.makedirs(self._absolute(folder), exist_ok=True)

    def _absolute(self, relative: str) -> str:
        normalised = posixpath.normpath(relative) if relative else "."
        escapes = normalised == ".." or normalised.startswith(("../", "/"))
        if escapes or "\x00" in relative:
            raise InputRejectedError(f"path {relative!r} points outside the storage root")
        return self.root if normalised == "." else posixpath.join(self.root, normalised)

    def local_path(self, work_dir: str, relative: str = "") -> Path | None:
        """The local path of a stored file, or None when storage is remote."""
        if not self.is_local:
            return None
        return Path(self._absolute(posixpath.join(work_dir, relative)))

    # -- inbox ------------------------------------------------------------------------------

    def list_inbox(self, folder: str = "") -> list[InboxEntry]:
        """Files waiting in the inbox (or one of its pipeline sub-folders), oldest first."""
        entries = []
        base = self._absolute(posixpath.join(INBOX, folder))
        if not self.fs.isdir(base):
            return []
        for info in self.fs.ls(base, detail=True):
            name = posixpath.basename(info["name"].rstrip("/"))
            if info.get("type") != "file" or name.startswith("."):
                continue
            modified = info.get("mtime") or info.get("LastModified") or 0
            if isinstance(modified, datetime):
                modified = modified.timestamp()
            relative = posixpath.join(folder, name) if folder else name
            entries.append(InboxEntry(relative, int(info.get("size") or 0), float(modified)))
        return sorted(entries, key=lambda entry: (entry.modified_at, entry.name))

    def take_from_inbox(self, name: str) -> tuple[str, str]:
        """Move an inbox file into a new work folder; returns (work_dir, stored_name)."""
        stored_name = safe_file_name(posixpath.basename(name))
        work_dir = self._new_work_dir(stored_name)
        source = self._absolute(posixpath.join(INBOX, name))
        self.fs.mv(source, self._absolute(posixpath.join(work_dir, stored_name)))
        return work_dir, stored_name

    def return_to_inbox(self, work_dir: str, stored_name: str, folder: str = "") -> None:
        """Undo :meth:`take_from_inbox` when the item could not be recorded."""
        self.move_out_of_work(work_dir, stored_name, posixpath.join(INBOX, folder))

    def move_out_of_work(self, work_dir: str, stored_name: str, destination: str) -> str:
        """Move a work folder's input to ``destination`` (a folder) and drop the work folder."""
        self.fs.makedirs(self._absolute(destination), exist_ok=True)
        target = posixpath.join(destination, stored_name)
        if self.fs.exists(self._absolute(target)):
            target = posixpath.join(destination, f"{posixpath.basename(work_dir)}")
        self.fs.mv(self._absolute(posixpath.join(work_dir, stored_name)), self._absolute(target))
        self.fs.rm(self._absolute(work_dir), recursive=True)
        return target

    def put_in_inbox(self, name: str, data: bytes, folder: str = "") -> str:
        stored_name = safe_file_name(name)
        self.fs.makedirs(self._absolute(posixpath.join(INBOX, folder)), exist_ok=True)
        self.fs.pipe_file(self._absolute(posixpath.join(INBOX, folder, stored_name)), data)
        return stored_name

    # -- work folders -----------------------------------------------------------------------

    def _new_work_dir(self, stored_name: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        for counter in range(1000):
            suffix = f"-{counter}" if counter else ""
            work_dir = posixpath.join(WORK, f"{stamp}{suffix}_{stored_name}")
            absolute = self._absolute(work_dir)
            if self.is_local:
                try:
                    os.makedirs(absolute)
                except FileExistsError:
                    continue
                return work_dir
            if not self.fs.exists(absolute):
                self.fs.makedirs(absolute, exist_ok=True)
                return work_dir
        raise InputRejectedError(f"could not create a work folder for {stored_name!r}")

    def reserve_work_dir(self, name: str) -> str:
        """A work folder name for a record item; created on first use, not now."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        return posixpath.join(WORK, f"{stamp}_{safe_file_name(name)}")

    def reserve_record_work_dirs(self, count: int) -> list[str]:
        """``count`` work folder names for record items, as ``reserve_work_dir`` would make
        them, with one timestamp (a batch of records is stamped once)."""
        prefix = posixpath.join(WORK, datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ_record-"))
        random = os.urandom(4 * count).hex()
        return [prefix + random[start : start + 8] for start in range(0, 8 * count, 8)]

    def receive(self, name: str, max_bytes: int | None = None) -> IncomingFile:
        """A new work folder holding the file ``name``, written piece by piece."""
        stored_name = safe_file_name(name)
        work_dir = self._new_work_dir(stored_name)
        return IncomingFile(self, name, work_dir, stored_name, max_bytes)

    def store_stream(
        self, stream: BinaryIO, name: str, max_bytes: int | None = None
    ) -> tuple[str, str, str, int]:
        """Copy a stream into a new work folder in chunks (never whole in memory).

        Returns (work_dir, stored_name, sha256 hex, size)."""
        incoming = self.receive(name, max_bytes)
        try:
            while chunk := stream.read(CHUNK_BYTES):
                incoming.write(chunk)
        except BaseException:
            incoming.abort()
            raise
        return incoming.finish()

    def store_file(self, path: Path, max_bytes: int | None = None) -> tuple[str, str, str, int]:
        if not path.is_file():
            raise InputRejectedError(f"{path} is not a readable file; check the path.")
        with path.open("rb") as stream:
            return self.store_stream(stream, path.name, max_bytes)

    def remove_work_dir(self, work_dir: str) -> None:
        absolute = self._absolute(work_dir)
        if self.fs.exists(absolute):
            self.fs.rm(absolute, recursive=True)

    def list_work_dirs(self) -> list[str]:
        return [
            posixpath.join(WORK, posixpath.basename(p.rstrip("/")))
            for p in self.fs.ls(self._absolute(WORK), detail=False)
        ]

    def list_files(self, work_dir: str) -> list[str]:
        base = self._absolute(work_dir)
        found = self.fs.find(base)
        return sorted(posixpath.relpath(p, base) for p in found)

    def sha256(self, work_dir: str, relative: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open(self._absolute(posixpath.join(work_dir, relative)), "rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
        return digest.hexdigest()

    def size(self, work_dir: str, relative: str) -> int:
        return int(self.fs.size(self._absolute(posixpath.join(work_dir, relative))))

    def open(self, work_dir: str, relative: str, mode: str = "rb") -> BinaryIO:
        return self.fs.open(self._absolute(posixpath.join(work_dir, relative)), mode)

    def write_bytes(self, work_dir: str, relative: str, data: bytes) -> str:
        path = posixpath.join(work_dir, relative)
        absolute = self._absolute(path)
        self.fs.makedirs(posixpath.dirname(absolute), exist_ok=True)
        self.fs.pipe_file(absolute, data)
        return path

    def download(self, work_dir: str, relative: str, target: Path) -> None:
        with self.open(work_dir, relative) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK_BYTES)

    def free_bytes(self) -> int | None:
        if not self.is_local:
            return None
        return shutil.disk_usage(self.root).free


class IncomingFile:
    """An input arriving in pieces: each is hashed, counted against the limit and written to
    the new work folder at once. ``finish`` or ``abort`` it, exactly once."""

    def __init__(
        self, storage: Storage, name: str, work_dir: str, stored_name: str, max_bytes: int | None
    ) -> None:
        self.storage = storage
        self.name = name
        self.work_dir = work_dir
        self.stored_name = stored_name
        self.max_bytes = max_bytes
        self.size = 0
        self._digest = hashlib.sha256()
        try:
            self._out = storage.fs.open(
                storage._absolute(posixpath.join(work_dir, stored_name)), "wb"
            )
        except BaseException:
            storage.remove_work_dir(work_dir)
            raise

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise InputTooLargeError(
                f"{self.name!r} is larger than the limit of {self.max_bytes} bytes; raise "
                "max_upload_bytes or split the file"
            )
        self._digest.update(data)
        self._out.write(data)

    def finish(self) -> tuple[str, str, str, int]:
        """Returns (work_dir, stored_name, sha256 hex, size)."""
        try:
            self._out.close()
        except BaseException:
            self.abort()
            raise
        return self.work_dir, self.stored_name, self._digest.hexdigest(), self.size

    def abort(self) -> None:
        """Drop what arrived, and the work folder with it."""
        try:
            self._out.close()
        finally:
            self.storage.remove_work_dir(self.work_dir)
