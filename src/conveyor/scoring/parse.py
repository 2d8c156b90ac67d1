"""One part of an input into a table of good rows and a list of rejects.

Clean data takes the fast path: pyarrow parses the whole part in C++ with the features typed.
A part it refuses (a bad number, a short row, a blank line, a null where the model needs a
value) is parsed again line by line in Python, which keeps the good rows and names each bad one
by file and line. Features come out as float64 (numbers) or strings; the other columns asked
for are kept as text for CSV and JSONL (exactly as written) and as stored for Parquet.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]

from conveyor.scoring.plan import Part, csv_header, open_file
from conveyor.serving.signature import NUMERIC, Signature

NULL_MARKERS = ("", "?", "NA", "null")  # a CSV cell meaning "missing" (heart uses '?')
MAX_REJECT_TEXT = 300


@dataclass(frozen=True)
class Reject:
    source: str
    line: int
    problem: str
    text: str

    def as_row(self) -> list[Any]:
        return [self.source, self.line, self.problem, self.text[:MAX_REJECT_TEXT]]


@dataclass
class ParsedPart:
    table: pa.Table  # the features and the columns asked for, good rows only
    rejects: list[Reject] = field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    """What to read: the model's features and the input columns to carry to the output."""

    signature: Signature
    keep: tuple[str, ...] | None  # None: every input column

    def columns_of(self, names: list[str]) -> list[str]:
        kept = [n for n in names if self.keep is None or n in self.keep]
        return list(dict.fromkeys([*kept, *self.signature.names]))

    def arrow_type(self, name: str) -> pa.DataType:
        feature = self.feature(name)
        if feature is None:
            return pa.string()
        if feature.kind in NUMERIC:
            return pa.float64()
        return pa.bool_() if feature.kind == "boolean" else pa.string()

    def feature(self, name: str) -> Any:
        return next((f for f in self.signature.features if f.name == name), None)


def parse_part(part: Part, layout: Layout) -> ParsedPart:
    if part.file_format == "csv":
        return _parse_csv(part, layout)
    if part.file_format == "jsonl":
        return _parse_jsonl(part, layout, _read_range(part))
    return _parse_parquet(part, layout)


def _read_range(part: Part) -> bytes:
    with open_file(part.source) as handle:
        handle.seek(part.byte_offset)
        data: bytes = handle.read(part.byte_length)
        return data


# -- CSV ------------------------------------------------------------------------------------


def _parse_csv(part: Part, layout: Layout) -> ParsedPart:
    header = csv_header(part.source)
    data = _read_range(part)
    table = _fast_csv(data, header, part, layout)
    if table is not None:
        return ParsedPart(table)
    return _slow_csv(data, header, part, layout)


def _fast_csv(data: bytes, header: list[str], part: Part, layout: Layout) -> pa.Table | None:
    from pyarrow import csv as arrow_csv

    columns = layout.columns_of(header)
    try:
        table = arrow_csv.read_csv(
            io.BytesIO(data),
            read_options=arrow_csv.ReadOptions(
                column_names=header, use_threads=False, block_size=max(len(data), 1 << 20)
            ),
            convert_options=arrow_csv.ConvertOptions(
                column_types={name: layout.arrow_type(name) for name in columns},
                include_columns=columns,
                null_values=list(NULL_MARKERS),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return table if _complete(table, part, layout) else None


def _complete(table: pa.Table, part: Part, layout: Layout) -> bool:
    """Every line became a row (no blank line skipped) and no feature the model needs is null."""
    if table.num_rows != part.expected_rows:
        return False
    return all(
        feature.nullable or table.column(feature.name).null_count == 0
        for feature in layout.signature.features
    )


def _slow_csv(data: bytes, header: list[str], part: Part, layout: Layout) -> ParsedPart:
    columns = layout.columns_of(header)
    positions = [header.index(name) for name in columns]
    builder = _RowBuilder(columns, layout, part.source)
    for number, raw in enumerate(_lines(data), start=part.first_line):
        if not raw.strip():
            continue
        try:
            fields = next(csv.reader([raw.decode("utf-8")]))
        except (UnicodeDecodeError, csv.Error) as error:
            builder.reject(number, f"unparseable line: {error}", raw)
            continue
        if len(fields) != len(header):
            problem = f"{len(fields)} fields, the header has {len(header)}"
            builder.reject(number, problem, raw)
            continue
        values = {name: fields[p] for name, p in zip(columns, positions, strict=True)}
        builder.add(number, values, raw)
    return builder.finish()


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


# -- JSONL ----------------------------------------------------------------------------------


def _parse_jsonl(part: Part, layout: Layout, data: bytes) -> ParsedPart:
    builder = _RowBuilder(None, layout, part.source)
    for number, raw in enumerate(_lines(data), start=part.first_line):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            builder.reject(number, f"not JSON: {error}", raw)
            continue
        if not isinstance(record, dict):
            builder.reject(number, "not a JSON object", raw)
            continue
        builder.add(number, record, raw)
    return builder.finish()


# -- Parquet --------------------------------------------------------------------------------


def _parse_parquet(part: Part, layout: Layout) -> ParsedPart:
    import pyarrow.compute as compute  # type: ignore[import-untyped]
    import pyarrow.parquet as parquet  # type: ignore[import-untyped]

    with open_file(part.source) as handle:
        reader = parquet.ParquetFile(handle)
        columns = layout.columns_of(reader.schema_arrow.names)
        table = reader.read_row_group(part.row_group or 0, columns=columns)
    try:
        typed = [
            compute.cast(table.column(name), layout.arrow_type(name))
            if layout.feature(name)
            else table.column(name)
            for name in columns
        ]
        table = pa.table(typed, names=columns)
        if _complete(table, part, layout):
            return ParsedPart(table)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    builder = _RowBuilder(None, layout, part.source, native=True)
    for number, record in enumerate(table.to_pylist(), start=part.first_line):
        builder.add(number, record, orjson.dumps(record, default=str))
    return builder.finish()


# -- the slow path's rows -------------------------------------------------------------------


class _RowBuilder:
    """Checks rows one by one and gathers the good ones column by column."""

    def __init__(
        self, columns: list[str] | None, layout: Layout, source: str, native: bool = False
    ) -> None:
        self.layout, self.source, self.native = layout, source, native
        self.columns = columns
        self.values: dict[str, list[Any]] = {}
        self.rejects: list[Reject] = []

    def reject(self, line: int, problem: str, raw: bytes) -> None:
        self.rejects.append(Reject(self.source, line, problem, raw.decode("utf-8", "replace")))

    def add(self, line: int, record: dict[str, Any], raw: bytes) -> None:
        if self.columns is None:
            self.columns = self.layout.columns_of(list(record))
            self.values = {name: [] for name in self.columns}
        elif not self.values:
            self.values = {name: [] for name in self.columns}
        row: dict[str, Any] = {}
        for name in self.columns:
            if name not in record:
                if self.layout.feature(name) is not None:
                    return self.reject(line, f"column {name!r} is missing", raw)
                row[name] = None
                continue
            value, problem = self._value(name, record[name])
            if problem:
                return self.reject(line, f"column {name!r}: {problem}", raw)
            row[name] = value
        for name in self.columns:
            self.values[name].append(row[name])

    def _value(self, name: str, value: Any) -> tuple[Any, str | None]:
        feature = self.layout.feature(name)
        if feature is None:
            return (value if self.native or value is None or isinstance(value, str)
                    else orjson.dumps(value).decode()), None  # fmt: skip
        return convert_feature(feature, value)

    def finish(self) -> ParsedPart:
        columns = self.columns or list(self.layout.signature.names)
        arrays = [pa.array(self.values.get(name, []), type=self._type(name)) for name in columns]
        return ParsedPart(pa.table(arrays, names=columns), self.rejects)

    def _type(self, name: str) -> pa.DataType | None:
        if self.native and self.layout.feature(name) is None:
            return None
        return self.layout.arrow_type(name)


def convert_feature(feature: Any, value: Any) -> tuple[Any, str | None]:
    """A feature's value (from CSV text, JSON or Parquet) as the model takes it, or a problem."""
    if value is None or (isinstance(value, str) and value.strip() in NULL_MARKERS):
        return None, (None if feature.nullable else "missing value")
    if feature.kind in NUMERIC:
        return _number(feature.kind, value)
    if feature.kind == "boolean":
        if isinstance(value, bool):
            return value, None
        text = str(value).strip().lower()
        if text in ("true", "1", "false", "0"):
            return text in ("true", "1"), None
        return None, f"{value!r} is not true or false"
    return (value if isinstance(value, str) else str(value)), None


def _number(kind: str, value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return None, f"{value!r} is not a number ({kind})"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"{value!r} is not a number ({kind})"
    if number != number or number in (float("inf"), float("-inf")):
        return None, f"{value!r} is not a finite number ({kind})"
    if kind in ("long", "integer") and not number.is_integer():
        return None, f"{value!r} is not a whole number ({kind})"
    return number, None
