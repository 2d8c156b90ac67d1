"""What callers hand the client (paths, open files, dicts, DataFrames) turned into what the API
takes. DataFrames are recognised by their methods, so pandas and polars stay unimported."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from conveyor.client.models import AliasChange

PREDICT_BATCH = 500  # the API takes at most 1,000 records and 1 MB per predict request
FileInput = str | os.PathLike[str] | IO[bytes]


def is_frame(data: Any) -> bool:
    return hasattr(data, "columns") and (hasattr(data, "to_json") or hasattr(data, "to_dicts"))


def records_of(data: Any) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: a pandas DataFrame (NaN becomes null, NumPy numbers plain
    numbers), a polars DataFrame, or an iterable of dicts."""
    if hasattr(data, "to_dicts"):  # polars
        return list(data.to_dicts())
    if is_frame(data):  # pandas: its JSON writer converts NumPy types and NaN
        return json.loads(data.to_json(orient="records", date_format="iso"))
    if isinstance(data, dict):
        return [data]
    return [dict(row) for row in data]


def predict_bodies(data: Any) -> list[Any]:
    """One dict stays one record; tables and lists go in batches the API accepts."""
    if isinstance(data, dict):
        return [data]
    rows = records_of(data)
    return [rows[start : start + PREDICT_BATCH] for start in range(0, len(rows), PREDICT_BATCH)]


def rows_csv(rows: Any) -> str:
    """New labelled rows as the model's dataset layout: CSV text (as is) or a DataFrame in
    column order, without header or index."""
    if isinstance(rows, str):
        return rows
    if hasattr(rows, "write_csv"):  # polars
        return str(rows.write_csv(include_header=False))
    return str(rows.to_csv(index=False, header=False))


@contextlib.contextmanager
def upload(file: FileInput, filename: str | None) -> Iterator[tuple[str, IO[bytes]]]:
    """(name to send, binary file) for a path or an open binary file; a path is opened here
    and closed afterwards. httpx reads it in chunks, so a big file never sits in memory."""
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        with path.open("rb") as opened:
            yield filename or path.name, opened
        return
    yield filename or Path(str(getattr(file, "name", "upload"))).name, file


def upload_form(pipeline: str, force: bool) -> dict[str, str]:
    # the pipeline part goes first: the server refuses an unknown pipeline before the file
    return {"pipeline": pipeline} | ({"force": "true"} if force else {})


def feedback_body(label: Any, event: str | None, value: Any) -> dict[str, Any]:
    body = {"label": label, "event": event, "value": value}
    return {k: v for k, v in body.items() if v is not None}


def item_ids(items: Iterable[Any]) -> list[str]:
    """Ids from ids, submissions or items (anything with ``item_id``)."""
    if isinstance(items, str) or hasattr(items, "item_id"):
        items = [items]
    return [item if isinstance(item, str) else item.item_id for item in items]


def registration_of(changes: list[AliasChange], item_id: str) -> AliasChange | None:
    """The alias change that registered a training item's version (one per registration)."""
    return next((c for c in changes if c.item_id == item_id), None)
