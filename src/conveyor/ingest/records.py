"""Record submission at scale: JSON lines read, parsed and committed batch by batch.

Memory holds one batch, never the whole input. The rule for a bad line: every record before
it is accepted (its batch is committed up to the line before), the bad line and everything
after it are not. Running the same input again after fixing the line accepts the rest; the
records already accepted come back as duplicates of their earlier items (docs/engine.md), so
nothing is doubled. The same holds after an interruption: a batch is one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from conveyor.errors import InputRejectedError

BATCH_RECORDS = 5_000  # one transaction each: big enough to amortise, small in memory
# `submit --records FILE`: a fourth as many commits (on SQLite each ended in a WAL checkpoint);
# the API keeps BATCH_RECORDS, as a server shares its database with the controller.
FILE_BATCH_RECORDS = 20_000
MAX_LINE_BYTES = 1 << 20  # a record line; a longer one is a bad line, not a memory spike
# orjson parses a line in a fraction of json.loads's time and to the same values, except:
# integers beyond 64 bits (orjson makes them floats: a line with 19 digits in a row goes to
# json.loads), and what orjson refuses that json.loads takes (NaN, Infinity, lone surrogates,
# a byte order mark), which falls back to json.loads. Same values, same content hashes.
_LONG_DIGITS = re.compile(rb"\d{19}")


@dataclass(frozen=True)
class RecordBatch:
    records: list[Any]
    first_line: int
    bytes_read: int  # of the whole input so far, for progress


class BadRecordLine(InputRejectedError):
    """A line that is not one JSON record; ``line`` is its 1-based number."""

    def __init__(self, name: str, line: int, problem: str) -> None:
        super().__init__(f"{name}:{line} {problem}; each line must be one JSON record.")
        self.line = line
        self.details = {"line": line}


@dataclass
class RecordSummary:
    """What a streamed submission did; ``error`` is set when it stopped at a bad line."""

    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    error: BadRecordLine | None = None
    seconds: float = 0.0
    batches: int = field(default=0, repr=False)

    def add(self, submissions: list[Any]) -> None:
        self.batches += 1
        self.records += len(submissions)
        duplicates = sum(1 for s in submissions if s.duplicate)
        self.duplicates += duplicates
        self.accepted += len(submissions) - duplicates

    def merge(self, other: RecordSummary) -> None:
        """Add the counts of ``other`` (a batch's summary) to these."""
        self.batches += other.batches
        self.records += other.records
        self.accepted += other.accepted
        self.duplicates += other.duplicates

    def as_dict(self) -> dict[str, Any]:
        stopped = (
            None if self.error is None else {"line": self.error.line, "message": str(self.error)}
        )
        return {
            "records": self.records,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "stopped_at": stopped,
        }


class JsonlBatcher:
    """Parses lines one by one into batches; counts lines (blank ones too) and bytes."""

    def __init__(self, name: str, batch_size: int = BATCH_RECORDS) -> None:
        self.name = name
        self.batch_size = batch_size
        self.line = 0
        self.bytes_read = 0
        self._records: list[Any] = []
        self._first_line = 1

    def feed(self, line: bytes) -> RecordBatch | None:
        """A full batch, once this line fills it; ``BadRecordLine`` if it is not a record
        (the records before it are still there for ``take``)."""
        self.line += 1
        if not self._records:
            self._first_line = self.line
        if len(line) > MAX_LINE_BYTES:
            raise BadRecordLine(self.name, self.line, f"is longer than {MAX_LINE_BYTES} bytes")
        self.bytes_read += len(line)
        if line.strip():
            self._records.append(self._parse(line))
        return self.take() if len(self._records) >= self.batch_size else None

    def _parse(self, line: bytes) -> Any:
        if not _LONG_DIGITS.search(line):
            try:
                return orjson.loads(line)
            except orjson.JSONDecodeError:
                pass  # json.loads decides, and says what is wrong
        try:
            return json.loads(line)
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
            problem = getattr(error, "msg", None) or "not UTF-8"
            raise BadRecordLine(self.name, self.line, f"is not valid JSON ({problem})") from error

    def take(self) -> RecordBatch | None:
        """The records parsed and not yet taken, as a batch (None if there are none)."""
        if not self._records:
            return None
        batch = RecordBatch(self._records, self._first_line, self.bytes_read)
        self._records = []
        return batch


def jsonl_batches(
    lines: Iterable[bytes], name: str, batch_size: int = BATCH_RECORDS
) -> Iterator[RecordBatch]:
    """Batches of parsed records; at a bad line, the records before it, then ``BadRecordLine``."""
    batcher = JsonlBatcher(name, batch_size)
    for line in lines:
        try:
            full = batcher.feed(line)
        except BadRecordLine:
            if (before := batcher.take()) is not None:
                yield before
            raise
        if full is not None:
            yield full
    if (rest := batcher.take()) is not None:
        yield rest


async def lines_of_chunks(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The lines of a byte stream arriving in chunks (an HTTP body), each with its newline.

    A line longer than ``MAX_LINE_BYTES`` is cut there, so memory stays bounded; the cut
    piece then fails to parse as a bad line."""
    pending = bytearray()
    async for chunk in chunks:
        pending.extend(chunk)
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            yield bytes(pending[start : end + 1])
            start = end + 1
        del pending[:start]
        if len(pending) > MAX_LINE_BYTES:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)
