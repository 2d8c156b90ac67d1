"""A JSON Lines file as a stream, for one machine without a broker:
``file:///ABSOLUTE/PATH/readings.jsonl[?start=latest]``.

Anything that appends a line to the file publishes a message (``echo '{"n": 1}' >> FILE``,
``conveyor streams publish``, a device's logger); the line, without its newline, is the
payload. A line is taken only once its newline is written, so a writer caught mid-line is
waited for. Appends by this module hold an exclusive ``flock`` on the file and are fsynced.

A consumer group is an offset file beside the data file, ``.NAME.GROUP.offset``: the byte
offset up to which the group acknowledged, written (fsync, then rename) on every ack. A crash
before the ack re-reads from there, and the message identity (``INODE:OFFSET``, the line's
inode and byte position) makes the re-read lines duplicates in the store. One consumer of a
group reads at a time: it holds ``.NAME.GROUP.lock`` (``flock``; the kernel releases it when
the process dies); the others wait and take over. Keys and headers are not kept (a line is a
payload). The file must only grow: a file truncated below the group's offset, or replaced by
another file (a new inode), is refused with the offset file to remove to read it from the start.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, unquote, urlsplit

from conveyor.errors import ConfigurationError, InputRejectedError
from conveyor.streams.brokers.base import Message, Outgoing

READ_CHUNK = 1024 * 1024
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class FileAddress:
    path: Path
    start_at_end: bool


def parse_url(url: str, options: Mapping[str, str] | None = None) -> FileAddress:
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not path.startswith("/"):
        raise ConfigurationError(
            f"file stream URL {url!r}: give an absolute path with three slashes, e.g. "
            "file:///home/me/readings.jsonl"
        )
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    start = query.get("start", (options or {}).get("start", "earliest"))
    if start not in ("earliest", "latest"):
        raise ConfigurationError(f"file stream start={start!r}: use earliest or latest")
    return FileAddress(Path(path), start == "latest")


def group_files(path: Path, group: str) -> tuple[Path, Path]:
    """(offset file, lock file) of ``group`` on the data file ``path``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in group)
    return (path.parent / f".{path.name}.{safe}.offset", path.parent / f".{path.name}.{safe}.lock")


def open_consumer(
    url: str, group: str, consumer_name: str, options: Mapping[str, str]
) -> FileConsumer:
    address = parse_url(url, options)
    if not address.path.parent.is_dir():
        raise ConfigurationError(f"file stream {address.path}: folder does not exist")
    return FileConsumer(address, group)


def open_producer(url: str, options: Mapping[str, str]) -> FileProducer:
    return FileProducer(parse_url(url, options).path)


class FileConsumer:
    def __init__(self, address: FileAddress, group: str) -> None:
        self.path = address.path
        self.start_at_end = address.start_at_end
        self.offset_file, lock_file = group_files(self.path, group)
        self._lock: IO[bytes] = lock_file.open("ab")
        self._owner = False
        self._data: IO[bytes] | None = None
        self._inode = 0
        self._read_at = 0  # where the next fetch reads (past fetched, unacked lines)
        self._acked = 0
        self._done: dict[int, int] = {}  # fetched line start -> its end, until acked past it
        self._acked_starts: set[int] = set()
        # The lag without re-reading the file: lines counted between the acked offset and
        # _scanned_to; each lag() reads only what was appended since.
        self._scanned_to = 0
        self._counted_lines = 0

    def fetch(self, max_messages: int, timeout_seconds: float) -> Sequence[Message]:
        deadline = time.monotonic() + timeout_seconds
        while True:
            if self._own_group():
                messages = self._read(max_messages)
                if messages:
                    return messages
            if time.monotonic() >= deadline:
                return []
            time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))

    def _own_group(self) -> bool:
        """Hold the group's lock (another consumer may hold it: then wait for it)."""
        if not self._owner:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self._owner = True
            self._read_at = self._acked = self._scanned_to = self._start_offset()
        return self._open_data()

    def _open_data(self) -> bool:
        if self._data is None:
            try:
                self._data = self.path.open("rb")
            except FileNotFoundError:
                return False  # nothing published yet
            self._inode = os.fstat(self._data.fileno()).st_ino
        self._check_unchanged()
        return True

    def _start_offset(self) -> int:
        try:
            saved = json.loads(self.offset_file.read_text())
        except FileNotFoundError:
            if self.start_at_end and self.path.exists():
                return self.path.stat().st_size
            return 0
        inode, offset = int(saved["inode"]), int(saved["offset"])
        current = self.path.stat() if self.path.exists() else None
        if current is not None and current.st_ino != inode and offset > 0:
            raise self._changed("was replaced by another file")
        return offset

    def _check_unchanged(self) -> None:
        status = os.stat(self.path) if self.path.exists() else None
        if status is None or status.st_ino != self._inode:
            raise self._changed("was replaced by another file or removed")
        if status.st_size < self._acked:
            raise self._changed(f"shrank below the byte {self._acked} read up to")

    def _changed(self, what: str) -> ConfigurationError:
        return ConfigurationError(
            f"file stream {self.path} {what}; a file stream must only grow (append lines). "
            f"To read the file from its start, stop the consumers and remove {self.offset_file}"
        )

    def _read(self, max_messages: int) -> list[Message]:
        assert self._data is not None
        self._data.seek(self._read_at)
        messages: list[Message] = []
        position = self._read_at
        while len(messages) < max_messages:
            complete = self._complete_lines()
            if not complete:
                break
            for line in complete.splitlines(keepends=True):
                start, position = position, position + len(line)
                self._done[start] = position
                payload = line.rstrip(b"\r\n")
                if payload.strip():
                    messages.append(Message(f"{self._inode}:{start}", payload, token=start))
                else:
                    self._acked_starts.add(start)  # a blank line: nothing to take
                if len(messages) >= max_messages:
                    break
            self._data.seek(position)
        self._read_at = position
        return messages

    def _complete_lines(self) -> bytes:
        """The next whole lines from the current position (at least one whole line, however
        long, when there is one), or nothing."""
        assert self._data is not None
        chunk = self._data.read(READ_CHUNK)
        while b"\n" not in chunk:
            more = self._data.read(READ_CHUNK)
            if not more:
                return b""
            chunk += more
        return chunk[: chunk.rfind(b"\n") + 1]

    def ack(self, messages: Sequence[Message]) -> None:
        self._acked_starts.update(int(str(m.token)) for m in messages)
        advanced = self._acked
        while advanced in self._acked_starts:  # past every line acked in order
            self._acked_starts.discard(advanced)
            advanced = self._done.pop(advanced)
            if advanced <= self._scanned_to:
                self._counted_lines -= 1
        self._scanned_to = max(self._scanned_to, advanced)
        if advanced != self._acked:
            self._acked = advanced
            self._save_offset(advanced)

    def _save_offset(self, offset: int) -> None:
        temporary = self.offset_file.with_name(self.offset_file.name + ".tmp")
        with temporary.open("w") as out:
            out.write(json.dumps({"inode": self._inode, "offset": offset}))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.offset_file)

    def lag(self) -> int | None:
        """Complete lines after the group's acknowledged offset."""
        if not self._owner or self._data is None:
            return None
        position = self._scanned_to
        with self.path.open("rb") as data:
            data.seek(position)
            while chunk := data.read(READ_CHUNK):
                newlines = chunk.count(b"\n")
                if newlines:  # a partial last line is counted once its newline is written
                    self._counted_lines += newlines
                    self._scanned_to = position + chunk.rfind(b"\n") + 1
                position += len(chunk)
        return self._counted_lines

    def close(self) -> None:
        if self._data is not None:
            self._data.close()
        self._lock.close()  # releases the group's lock


class FileProducer:
    def __init__(self, path: Path) -> None:
        self.path = path

    def publish(
        self, payload: bytes, *, key: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        self.publish_batch([Outgoing(payload, key, headers or {})])

    def publish_batch(self, messages: Sequence[Outgoing]) -> None:
        """Append one line per message under an exclusive lock, then fsync."""
        lines = b"".join(one_line(message.payload) + b"\n" for message in messages)
        with self.path.open("ab") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            try:
                out.write(lines)
                out.flush()
                os.fsync(out.fileno())
            finally:
                fcntl.flock(out, fcntl.LOCK_UN)

    def close(self) -> None:
        pass


def one_line(payload: bytes) -> bytes:
    """The payload as one line: JSON written over several lines is compacted."""
    if b"\n" not in payload and b"\r" not in payload:
        return payload
    try:
        return json.dumps(json.loads(payload), separators=(",", ":")).encode()
    except ValueError as error:
        raise InputRejectedError(
            "a file stream's message is one line; this payload has line breaks and is not JSON"
        ) from error
