"""One streaming pass over a CSV file, a block at a time, into the profile of every column and
the quality counts; memory is a few blocks plus the bounded aggregates of ``sketches``.

pyarrow's streaming reader parses each block in C++ with every column as text; a row with more
or fewer fields than the header is set aside by the reader and parsed with Python's csv module
(missing fields are missing values, extra fields are dropped). A column stays a number column
while every present value parses as a finite number; one that turns out to be text after its
first numbers is read again, that column alone, for its values.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
from pyarrow import csv as arrow_csv

from conveyor.pipelines.csv_profile.sketches import (
    DuplicateRows,
    Moments,
    QuantileSample,
    TextValues,
    row_hashes,
)

DEFAULT_BLOCK_SIZE = 1024 * 1024  # the reader holds ~18 blocks (read-ahead); 1 MiB was fastest
FIELD_SEPARATOR = "\x1f"  # joins a row's fields for its hash; \x00 stands for a missing one


@dataclass(frozen=True)
class CsvLayout:
    header: list[str]
    dialect: Any  # a csv.Dialect (class or instance)


@dataclass
class ColumnState:
    missing: int = 0
    numbers: Moments | None = field(default_factory=Moments)  # None once a text column
    sample: QuantileSample = field(default_factory=QuantileSample)
    text: TextValues | None = None
    read_again: bool = False  # turned text after numbers: its values need a second pass

    def summary(self) -> dict[str, Any]:
        if self.numbers is not None and self.numbers.count:
            return {"missing": self.missing} | self.numbers.summary() | self.sample.summary()
        return {"missing": self.missing} | (self.text or TextValues()).summary()


class Profiler:
    """Aggregates over blocks; ``quality`` off for the second pass over late text columns."""

    def __init__(self, names: list[str], spill: Path | None, text_only: bool = False) -> None:
        self.states = {name: ColumnState() for name in names}
        if text_only:
            for state in self.states.values():
                state.numbers, state.text = None, TextValues()
        self.duplicates = DuplicateRows(spill) if spill is not None else None
        self.rows = self.incomplete = 0

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        blank_rows = None
        for name, state in self.states.items():
            column = table.column(name)
            trimmed = pc.utf8_trim_whitespace(column)
            blank = pc.fill_null(pc.equal(trimmed, ""), True)
            blank_rows = blank if blank_rows is None else pc.or_(blank_rows, blank)
            state.missing += pc.sum(blank).as_py() or 0
            _add_values(state, column, trimmed, pc.invert(blank))
        if self.duplicates is not None and blank_rows is not None:
            self.incomplete += pc.sum(blank_rows).as_py() or 0
            self.duplicates.add(row_hashes(_joined_rows(table)))

    def columns(self) -> dict[str, dict[str, Any]]:
        return {name: state.summary() for name, state in self.states.items()}

    def quality(self) -> dict[str, int]:
        duplicates = self.duplicates.count() if self.duplicates is not None else 0
        return {"duplicate_rows": duplicates, "incomplete_rows": self.incomplete}


def _add_values(state: ColumnState, column: Any, trimmed: Any, present: Any) -> None:
    if state.numbers is not None:
        numbers = _finite_numbers(pc.filter(trimmed, present))
        if numbers is not None:
            state.numbers.add(numbers)
            state.sample.add(numbers)
            return
        state.read_again = state.numbers.count > 0
        state.numbers, state.text, state.sample = None, TextValues(), QuantileSample(0)
    if state.text is not None and not state.read_again:
        counted = pc.value_counts(pc.filter(column, present))
        state.text.add(counted.field("values").to_pylist(), counted.field("counts").to_pylist())


def _finite_numbers(values: Any) -> np.ndarray | None:
    try:
        numbers = pc.cast(values, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return numbers if np.isfinite(numbers).all() else None


def _joined_rows(table: pa.Table) -> list[str]:
    joined = pc.binary_join_element_wise(
        *table.columns, FIELD_SEPARATOR, null_handling="replace", null_replacement="\x00"
    )
    rows: list[str] = joined.to_pylist()
    return rows


def profile_csv(path: Path, layout: CsvLayout, spill: Path, block_size: int) -> dict[str, Any]:
    """``rows``, ``columns`` (name: profile) and ``quality`` of the file, in one pass (two for
    a column that turns from numbers to text)."""
    profiler = Profiler(layout.header, spill)
    for table in read_blocks(path, layout, block_size):
        profiler.add(table)
    columns = profiler.columns()
    late = [name for name, state in profiler.states.items() if state.read_again]
    if late:
        again = Profiler(late, None, text_only=True)
        for table in read_blocks(path, layout, block_size, late):
            again.add(table)
        for name, profile in again.columns().items():
            columns[name] = profile | {"missing": columns[name]["missing"]}
    return {"rows": profiler.rows, "columns": columns, "quality": profiler.quality()}


def read_blocks(
    path: Path, layout: CsvLayout, block_size: int, only: list[str] | None = None
) -> Iterator[pa.Table]:
    """The rows after the header as tables of text columns (null: a field the row lacks)."""
    ragged: list[str] = []

    def set_aside(row: Any) -> str:
        ragged.append(row.text)
        return "skip"

    reader = arrow_csv.open_csv(
        path,
        read_options=arrow_csv.ReadOptions(
            block_size=block_size, skip_rows=1, column_names=layout.header, use_threads=False
        ),
        parse_options=_parse_options(layout.dialect, set_aside),
        convert_options=arrow_csv.ConvertOptions(
            column_types={name: pa.string() for name in layout.header},
            include_columns=only,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    for batch in reader:
        yield pa.Table.from_batches([batch])
        if ragged:
            yield _ragged_table(ragged, layout, only)
            ragged.clear()
    if ragged:
        yield _ragged_table(ragged, layout, only)


def _parse_options(dialect: Any, handler: Any) -> Any:
    return arrow_csv.ParseOptions(
        delimiter=dialect.delimiter,
        quote_char=dialect.quotechar or False,
        double_quote=dialect.doublequote,
        escape_char=dialect.escapechar or False,
        newlines_in_values=True,
        ignore_empty_lines=True,
        invalid_row_handler=handler,
    )


def _ragged_table(texts: list[str], layout: CsvLayout, only: list[str] | None) -> pa.Table:
    width = len(layout.header)
    rows = [row[:width] + [None] * (width - len(row)) for row in csv.reader(texts, layout.dialect)]
    columns = {
        name: pa.array([row[number] for row in rows], pa.string())
        for number, name in enumerate(layout.header)
        if only is None or name in only
    }
    return pa.table(columns)
