"""/api/v1/results: a pipeline's items with results, streamed as JSON, CSV or Parquet."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from conveyor.api.disclosure import disclosure_for
from conveyor.api.errors import error_responses
from conveyor.api.params import utc_naive
from conveyor.api.security import require
from conveyor.auth.roles import Role
from conveyor.auth.service import Principal
from conveyor.results.export import iter_csv, iter_json, iter_rows
from conveyor.store.queries import ItemFilter

router = APIRouter(prefix="/results", tags=["results"])
PARQUET_BATCH = 5000


EXPORT_RESPONSES = {
    200: {
        "description": "the rows, streamed",
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    **error_responses(404),
}


@router.get("", responses=EXPORT_RESPONSES)
def export_results(
    request: Request,
    pipeline: str,
    format: Literal["json", "csv", "parquet"] = "json",
    status: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    principal: Principal = Depends(require(Role.VIEWER)),
) -> StreamingResponse:
    """Failed items carry their error: without traceback and server paths for viewers."""
    installation = request.app.state.installation
    installation.registry.get(pipeline)
    filters = ItemFilter(
        pipeline,
        status,
        q,
        utc_naive(created_after, "created_after"),
        utc_naive(created_before, "created_before"),
    )
    disclose = disclosure_for(principal, installation.storage)

    def rows() -> Iterator[dict[str, Any]]:
        return iter_rows(installation.sessions, filters, disclose)

    name = f"{pipeline}-results.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "json":
        return StreamingResponse(iter_json(rows()), media_type="application/json", headers=headers)
    if format == "csv":
        return StreamingResponse(iter_csv(rows), media_type="text/csv", headers=headers)
    return StreamingResponse(
        _parquet_chunks(rows()),
        media_type="application/vnd.apache.parquet",
        headers=headers,
    )


class _Sink:
    """A write-only file for pyarrow that hands out what was written so far."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _parquet_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = _Sink()
    columns = (
        "item_id",
        "input",
        "pipeline",
        "pipeline_version",
        "status",
        "finished_at",
        "error",
        "result",
    )
    schema = pa.schema([(c, pa.string()) for c in columns])
    with pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema) as writer:
        batch: list[dict[str, str | None]] = []
        for row in rows:
            batch.append({key: _text(row.get(key)) for key in columns})
            if len(batch) >= PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema))
                batch.clear()
                yield sink.drain()
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema))
    yield sink.drain()


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
