"""Inputs into parts: the files behind globs and folders, cut into pieces a worker scores at once.

CSV and JSONL files are cut into byte ranges of about ``block_size`` that end at a line end;
each part knows the number of its first line, so rejects name the line of the file. Parquet
files are cut at row groups. Cutting reads a text file once (counting line ends, in bounded
memory); Parquet needs only its footer. A CSV record may not span lines (no newline inside
quotes), as with Spark's default reader.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from conveyor.errors import InputRejectedError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
SCAN_BYTES = 8 * 1024 * 1024
DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024  # a worker peaks at ~20x this above its baseline
GLOB_CHARACTERS = "*?["


class ScoringInputError(InputRejectedError):
    """An input cannot be scored as a whole (not found, unknown format, columns missing)."""

    code = "invalid_scoring_input"
    http_status = 422


@dataclass(frozen=True)
class Part:
    index: int
    source: str  # a URL fsspec opens (a local path is a path)
    file_format: str  # csv, jsonl, parquet
    byte_offset: int
    byte_length: int
    first_line: int  # file line of the first row (1 is a CSV header); Parquet: row number
    expected_rows: int  # lines (CSV/JSONL, blank ones included) or rows of the row group
    row_group: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Part:
        return cls(**wire)


def expand_inputs(inputs: list[str]) -> list[str]:
    """Every file the inputs name, in a stable order: files, globs and folders (recursively,
    files of a known format only), local or any fsspec URL."""
    found: list[str] = []
    for given in inputs:
        matches = _files_of(given)
        if not matches:
            raise ScoringInputError(f"{given}: no such file, or no CSV, JSONL or Parquet in it.")
        found += [name for name in matches if name not in found]
    return found


def _files_of(given: str) -> list[str]:
    import fsspec  # type: ignore[import-untyped]

    filesystem, path = fsspec.core.url_to_fs(given)
    protocol = _protocol_prefix(given)
    if any(character in path for character in GLOB_CHARACTERS):
        names = sorted(filesystem.glob(path))
    elif filesystem.isdir(path):
        names = sorted(filesystem.find(path))
        names = [name for name in names if file_format(name, strict=False)]
    elif filesystem.exists(path):
        names = [path]
    else:
        names = []
    return [protocol + name for name in names if not _hidden(name)]


def _protocol_prefix(given: str) -> str:
    return given.split("://", 1)[0] + "://" if "://" in given else ""


def _hidden(name: str) -> bool:
    return name.rstrip("/").rsplit("/", 1)[-1].startswith((".", "_"))


def file_format(name: str, strict: bool = True) -> str | None:
    lowered = name.lower()
    for suffix, kind in FORMATS.items():
        if lowered.endswith(suffix):
            return kind
    if strict:
        raise ScoringInputError(
            f"{name}: unknown format; name files .csv, .jsonl (or .ndjson) or .parquet."
        )
    return None


def plan_parts(files: list[str], block_size: int, features: tuple[str, ...]) -> list[Part]:
    """The parts of every file, numbered across files; checks that each file has the
    model's features as columns (a CSV header, a Parquet schema)."""
    parts: list[Part] = []
    for source in files:
        kind = file_format(source)
        if kind == "parquet":
            pieces = _parquet_parts(source, features)
        else:
            pieces = _text_parts(source, kind or "csv", block_size, features)
        for piece in pieces:
            parts.append(Part(index=len(parts), **piece))
    return parts


def open_file(source: str, mode: str = "rb") -> Any:
    import fsspec

    return fsspec.open(source, mode).open()


def csv_header(source: str) -> list[str]:
    with open_file(source) as handle:
        line = handle.readline()
    return header_of(line, source)


def header_of(line: bytes, source: str) -> list[str]:
    try:
        text = line.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise ScoringInputError(f"{source}:1: the header is not UTF-8 ({error}).") from None
    names = next(csv.reader(io.StringIO(text)), [])
    if not names:
        raise ScoringInputError(f"{source} is empty; a CSV input starts with a header line.")
    return [name.strip() for name in names]


def _text_parts(
    source: str, kind: str, block_size: int, features: tuple[str, ...]
) -> Iterator[dict[str, Any]]:
    with open_file(source) as handle:
        start, line = 0, 1
        if kind == "csv":
            header = handle.readline()
            _check_columns(source, header_of(header, source), features)
            start, line = len(header), 2
        for offset, length, lines in line_ranges(handle, start, block_size):
            yield {
                "source": source,
                "file_format": kind,
                "byte_offset": offset,
                "byte_length": length,
                "first_line": line,
                "expected_rows": lines,
            }
            line += lines


def line_ranges(handle: Any, start: int, block_size: int) -> Iterator[tuple[int, int, int]]:
    """(offset, length, lines) of consecutive ranges of at least ``block_size`` bytes that end
    just after a line end (the last one at the end of the file); reads ``SCAN_BYTES`` at once."""
    handle.seek(start)
    part_start, part_lines, position, last = start, 0, start, b"\n"
    while chunk := handle.read(SCAN_BYTES):
        view = 0
        while True:
            target = max(part_start + block_size - position - 1, view)
            cut = chunk.find(b"\n", target) if target < len(chunk) else -1
            if cut < 0:
                part_lines += chunk.count(b"\n", view)
                break
            part_lines += chunk.count(b"\n", view, cut + 1)
            yield part_start, position + cut + 1 - part_start, part_lines
            part_start, part_lines, view = position + cut + 1, 0, cut + 1
        position += len(chunk)
        last = chunk[-1:]
    if position > part_start:
        yield part_start, position - part_start, part_lines + (last != b"\n")


def _parquet_parts(source: str, features: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as parquet  # type: ignore[import-untyped]

    with open_file(source) as handle:
        metadata = parquet.ParquetFile(handle).metadata
        _check_columns(source, metadata.schema.to_arrow_schema().names, features)
        first_row = 1
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            yield {
                "source": source,
                "file_format": "parquet",
                "byte_offset": 0,
                "byte_length": metadata.row_group(group).total_byte_size,
                "first_line": first_row,
                "expected_rows": rows,
                "row_group": group,
            }
            first_row += rows


def _check_columns(source: str, names: list[str], features: tuple[str, ...]) -> None:
    missing = [name for name in features if name not in names]
    if missing:
        raise ScoringInputError(
            f"{source} has no column {', '.join(map(repr, missing))}; the model needs "
            f"{', '.join(features)} (found {', '.join(names) or 'none'})."
        )
