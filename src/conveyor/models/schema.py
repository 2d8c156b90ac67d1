"""Table schemas for training data: parse a CSV and check every value, naming what is wrong.

A schema lists its columns in file order with their role (a feature kind or the target), the
range or set of values they may take, and whether a value may be missing. ``parse_table``
returns a float DataFrame (missing values as NaN) or raises :class:`DatasetError` listing the
first problems by row, column and value, so a data owner can fix the file.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    import pandas as pd

Role = Literal["numeric", "categorical", "binary", "target"]
MAX_REPORTED_PROBLEMS = 5


class DatasetError(ConveyorError):
    """Training data does not match its schema (or is too small to train on)."""

    code = "invalid_dataset"
    http_status = 422


@dataclass(frozen=True)
class Column:
    name: str
    role: Role
    minimum: float
    maximum: float
    allowed: tuple[float, ...] = ()
    missing_allowed: bool = False

    def problem_with(self, value: float) -> str | None:
        if self.allowed and value not in self.allowed:
            choices = ", ".join(_number_text(a) for a in self.allowed)
            return f"{_number_text(value)} is not one of {choices}"
        if not self.minimum <= value <= self.maximum:
            return (
                f"{_number_text(value)} is outside {_number_text(self.minimum)}.."
                f"{_number_text(self.maximum)}"
            )
        return None


@dataclass(frozen=True)
class TableSchema:
    """Columns in file order; exactly one has the role ``target``.

    ``missing_markers`` are the texts that mean "no value" ('?' in the UCI files, or empty).
    """

    name: str
    columns: tuple[Column, ...]
    missing_markers: tuple[str, ...] = ("?", "")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def target(self) -> str:
        return next(c.name for c in self.columns if c.role == "target")

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.columns if c.role != "target"]

    def feature_indices(self, role: Role) -> list[int]:
        """Positions, among the features, of the features with this role."""
        roles = [c.role for c in self.columns if c.role != "target"]
        return [index for index, r in enumerate(roles) if r == role]


def parse_table(schema: TableSchema, data: bytes, source: str) -> pd.DataFrame:
    """Parse CSV bytes (no header; a header row equal to the column names is skipped)."""
    import pandas as pd  # here, so that declaring a schema stays cheap

    rows = read_rows(schema, data, source)
    values, problems = _convert_rows(schema, rows)
    if problems:
        raise DatasetError(_problem_report(schema, source, problems))
    return pd.DataFrame(values, columns=schema.names, dtype=float)


def check_rows(schema: TableSchema, data: bytes, source: str) -> list[list[str]]:
    """The rows of a CSV as text cells, after checking every value against the schema."""
    rows = read_rows(schema, data, source)
    _, problems = _convert_rows(schema, rows)
    if problems:
        raise DatasetError(_problem_report(schema, source, problems))
    return [[cell.strip() for cell in row] for row in rows]


def read_rows(schema: TableSchema, data: bytes, source: str) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"{source} is not UTF-8 text ({error}); save it as UTF-8 CSV."
        ) from error
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if rows and [cell.strip() for cell in rows[0]] == schema.names:
        rows = rows[1:]
    if not rows:
        raise DatasetError(f"{source} has no data rows; expected columns {schema.names}.")
    return rows


def _convert_rows(
    schema: TableSchema, rows: Sequence[Sequence[str]]
) -> tuple[list[list[float]], list[str]]:
    values: list[list[float]] = []
    problems: list[str] = []
    for number, row in enumerate(rows, start=1):
        if len(row) != len(schema.columns):
            problems.append(
                f"row {number}: expected {len(schema.columns)} values "
                f"({', '.join(schema.names)}), found {len(row)}"
            )
            continue
        converted = [
            _convert(schema, column, cell, number, problems)
            for column, cell in zip(schema.columns, row, strict=True)
        ]
        values.append(converted)
    return values, problems


def _convert(
    schema: TableSchema, column: Column, cell: str, row: int, problems: list[str]
) -> float:
    text = cell.strip()
    if text in schema.missing_markers:
        if not column.missing_allowed:
            problems.append(f"row {row}, column {column.name!r}: value is missing ({text!r})")
        return math.nan
    try:
        value = float(text)
    except ValueError:
        problems.append(f"row {row}, column {column.name!r}: {text!r} is not a number")
        return math.nan
    problem = column.problem_with(value) if math.isfinite(value) else f"{text!r} is not finite"
    if problem:
        problems.append(f"row {row}, column {column.name!r}: {problem}")
    return value


def _problem_report(schema: TableSchema, source: str, problems: list[str]) -> str:
    shown = "; ".join(problems[:MAX_REPORTED_PROBLEMS])
    more = len(problems) - MAX_REPORTED_PROBLEMS
    tail = f"; and {more} more" if more > 0 else ""
    optional = [c.name for c in schema.columns if c.missing_allowed]
    hint = f" (only {', '.join(optional)} may be missing)" if optional else ""
    return (
        f"invalid {schema.name} training data in {source}: {len(problems)} problem(s): "
        f"{shown}{tail}. Fix these rows{hint} and train again."
    )


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
