"""Exported results as tables: pandas, Arrow, or polars (if installed). pandas and pyarrow are
imported only when a table is asked for, so importing the client stays light."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from conveyor.client.html import grid_table
from conveyor.client.models import parse_time

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

TIME_COLUMNS = ("finished_at",)
SHOWN_ROWS = 20


def flatten(value: Any, prefix: str) -> dict[str, Any]:
    """A nested dict as dotted columns (``result.rows``), as the CSV export names them; lists
    and scalars stay one cell."""
    if not isinstance(value, dict) or not value:
        return {prefix: value}
    columns: dict[str, Any] = {}
    for key, inner in value.items():
        columns |= flatten(inner, f"{prefix}.{key}")
    return columns


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in row.items() if k != "result"}
    if row.get("result") is None:  # a failed item: its result columns stay empty
        return flat
    return flat | flatten(row["result"], "result")


def arrow_safe(value: Any) -> Any:
    """Lists and dicts left in a cell become JSON text: Arrow needs one type per column."""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


class ResultSet(Sequence[dict[str, Any]]):
    """A pipeline's exported rows: ``item_id``, ``input``, ``pipeline``, ``pipeline_version``,
    ``status``, ``finished_at``, ``error`` and ``result`` (the pipeline's JSON result).

    ``to_pandas()``, ``to_arrow()`` and ``to_polars()`` spread a dict result over dotted
    columns (``result.rows``); ``flatten=False`` keeps it in one ``result`` column."""

    def __init__(self, pipeline: str, rows: list[dict[str, Any]]) -> None:
        self.pipeline = pipeline
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> Any:
        return self.rows[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def records(self, flatten: bool = True) -> list[dict[str, Any]]:
        return [flat_row(r) for r in self.rows] if flatten else [dict(r) for r in self.rows]

    def to_pandas(self, flatten: bool = True) -> pandas.DataFrame:
        import pandas

        rows = self.records(flatten)
        frame = pandas.DataFrame.from_records(rows, columns=self._columns(rows))
        for column in TIME_COLUMNS:
            frame[column] = pandas.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame

    def to_arrow(self, flatten: bool = True) -> pyarrow.Table:
        import pyarrow

        rows = self.records(flatten)
        columns = self._columns(rows)
        data = {c: [arrow_safe(r.get(c)) for r in rows] for c in columns}
        for column in TIME_COLUMNS:
            data[column] = [parse_time(v) for v in data[column]]
        return pyarrow.table(data)

    def to_polars(self, flatten: bool = True) -> polars.DataFrame:
        try:
            import polars
        except ImportError:
            raise ImportError(
                "to_polars() needs polars, which is not installed: pip install polars "
                "(or use to_pandas() or to_arrow())"
            ) from None
        return polars.from_arrow(self.to_arrow(flatten))  # type: ignore[return-value]

    @staticmethod
    def _columns(rows: list[dict[str, Any]]) -> list[str]:
        fixed = ["item_id", "input", "pipeline", "pipeline_version", "status", "finished_at"]
        seen = dict.fromkeys([*fixed, "error"])
        for row in rows:
            seen |= dict.fromkeys(row)
        return list(seen)

    def _repr_html_(self) -> str:
        rows = self.records()[:SHOWN_ROWS]
        columns = self._columns(rows)
        shown = [[r.get(c) for c in columns] for r in rows]
        more = f" (first {SHOWN_ROWS})" if len(self.rows) > SHOWN_ROWS else ""
        return grid_table(f"{self.pipeline}: {len(self.rows)} row(s){more}", columns, shown)

    def __repr__(self) -> str:
        return f"<ResultSet {self.pipeline!r}: {len(self.rows)} row(s)>"
