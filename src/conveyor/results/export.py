"""Streaming exports of results: rows are read in batches and written as they come, so a large
export never sits whole in memory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from sqlalchemy.orm import Session, sessionmaker

from conveyor.results.formulas import spreadsheet_safe
from conveyor.store.models import Item, Result
from conveyor.store.queries import ItemFilter, iter_results

BASE_COLUMNS = ["item_id", "input", "pipeline", "pipeline_version", "status", "finished_at"]


def export_row(item: Item, result: Result | None) -> dict[str, Any]:
    return {
        "item_id": item.id,
        "input": item.input_name if item.kind == "file" else item.record,
        "pipeline": item.pipeline,
        "pipeline_version": result.pipeline_version if result else item.pipeline_version,
        "status": item.status,
        "finished_at": item.finished_at.isoformat() + "Z" if item.finished_at else None,
        "error": item.error,
        "result": result.result if result else None,
    }


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted columns; lists stay as JSON text in one cell."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat |= flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return flat
    if isinstance(value, list):
        return {prefix: json.dumps(value, ensure_ascii=False)}
    return {prefix: value}


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """One CSV row; text that a spreadsheet would run as a formula is neutralised."""
    flat = {key: row[key] for key in BASE_COLUMNS}
    flat["input"] = row["input"] if isinstance(row["input"], str) else json.dumps(row["input"])
    flat["error"] = row["error"]
    flat |= flatten(row["result"], "result") if row["result"] is not None else {}
    return {key: spreadsheet_safe(value) for key, value in flat.items()}


def iter_rows(
    sessions: sessionmaker[Session],
    filters: ItemFilter,
    disclose: Callable[[str | None], str | None] = lambda error: error,
) -> Iterator[dict[str, Any]]:
    """Export rows; ``disclose`` decides how much of each error the reader sees."""
    with sessions() as session:
        for item, result in iter_results(session, filters):
            row = export_row(item, result)
            row["error"] = disclose(row["error"])
            yield row


def iter_json(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A JSON list in chunks, one row at a time."""
    yield "["
    count = 0
    for row in rows:
        yield ("," if count else "") + "\n" + json.dumps(row, ensure_ascii=False, default=str)
        count += 1
    yield "\n]\n" if count else "]\n"


def write_json(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Write a JSON list to ``out``; returns the number of rows."""
    counted: list[int] = [0]

    def counting() -> Iterator[dict[str, Any]]:
        for row in rows:
            counted[0] += 1
            yield row

    for chunk in iter_json(counting()):
        out.write(chunk)
    return counted[0]


def csv_columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every column the rows will need, in first-seen order (one pass over the rows)."""
    columns = [*BASE_COLUMNS, "error"]
    seen = set(columns)
    for row in rows:
        for key in csv_row(row):
            if key not in seen:
                seen.add(key)
                columns.append(key)
    return columns


def iter_csv(
    rows_factory: Callable[[], Iterable[dict[str, Any]]], chunk_rows: int = 500
) -> Iterator[str]:
    """CSV text in chunks. Two passes over the rows: the first finds every column."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(rows_factory()), extrasaction="ignore")
    writer.writeheader()
    for index, row in enumerate(rows_factory(), start=1):
        writer.writerow(csv_row(row))
        if index % chunk_rows == 0:
            yield _take(buffer)
    yield _take(buffer)


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def write_csv(rows_factory: Callable[[], Iterable[dict[str, Any]]], out: TextIO) -> int:
    """Write CSV to ``out``; returns the number of data rows."""
    counts: list[int] = []

    def counted() -> Iterator[dict[str, Any]]:
        counts.append(0)
        for row in rows_factory():
            counts[-1] += 1
            yield row

    for chunk in iter_csv(counted):
        out.write(chunk)
    return counts[-1]
