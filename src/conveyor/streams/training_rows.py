"""What a message of a training source becomes: one labelled row of the model's dataset, in
the schema's column order, or a poison message saying which column is wrong. Plain functions.

A message is a JSON object naming each column (``{"age": 63, "sex": 1, ..., "target": 0}``);
numbers may also be given as text, and ``null`` or an absent key is a missing value (refused
unless the schema allows it for that column). Other keys are kept with the payload only.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

from conveyor.models.schema import DatasetError, TableSchema, check_rows
from conveyor.streams.messages import (
    MAX_REASON_CHARS,
    Poison,
    RecordCheck,
    RecordInput,
    parse_message,
)


@dataclass(frozen=True)
class RowInput:
    cells: list[str]  # the row as CSV cells, checked against the schema
    payload: dict[str, Any]  # the whole message, kept with the row


def message_row(
    schema: TableSchema, payload: bytes, check: RecordCheck | None = None
) -> RowInput | Poison:
    parsed = parse_message(payload, ("record",), "", check)
    if isinstance(parsed, Poison):
        return parsed
    if not isinstance(parsed, RecordInput):  # a $file message: rows are records
        return Poison("wrong_kind", "a training source takes records (rows), not files")
    value = parsed.record
    absent = [c.name for c in schema.columns if value.get(c.name) is None and not c.missing_allowed]
    if absent:
        return Poison(
            "missing_column",
            f"no value for {', '.join(absent)}; a message names every column of the "
            f"{schema.name} dataset ({', '.join(schema.names)})"[:MAX_REASON_CHARS],
        )
    cells = [_cell(schema, value.get(name)) for name in schema.names]
    if any(cell is None for cell in cells):
        wrong = [n for n, c in zip(schema.names, cells, strict=True) if c is None]
        return Poison("not_a_number", f"{', '.join(wrong)}: give a number or a numeric string")
    checked = _checked(schema, [c for c in cells if c is not None])
    if isinstance(checked, Poison):
        return checked
    return RowInput(checked, value)


def _cell(schema: TableSchema, value: Any) -> str | None:
    if value is None:
        return schema.missing_markers[0]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _checked(schema: TableSchema, cells: list[str]) -> list[str] | Poison:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    try:
        [row] = check_rows(schema, buffer.getvalue().encode(), "the message")
    except DatasetError as error:
        return Poison("out_of_range", str(error)[:MAX_REASON_CHARS])
    return row
