"""/api/v1/datasets: the dataset snapshots training runs used, the runs that used each, and a
snapshot's bytes (docs/datasets.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from conveyor.api.errors import error_responses
from conveyor.api.security import operator, viewer
from conveyor.api.timestamps import UtcDatetime
from conveyor.models.datasets import DatasetCatalog, DatasetRun, DatasetSnapshot

router = APIRouter(prefix="/datasets", tags=["datasets"])
CHUNK_BYTES = 1 << 20


class DatasetRunOut(BaseModel):
    item_id: str
    model: str
    status: str
    version: int | None
    run_id: str | None
    trigger: str
    source: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, run: DatasetRun) -> DatasetRunOut:
        return cls(
            item_id=run.item_id,
            model=run.model,
            status=run.status,
            version=run.version,
            run_id=run.run_id,
            trigger=run.trigger,
            source=run.source,
            created_at=run.created_at,
        )


class DatasetOut(BaseModel):
    digest: str
    model: str
    size: int | None  # null: the snapshot is gone from storage
    path: str  # inside the storage
    versions: list[int]
    first_used_at: UtcDatetime | None
    runs: list[DatasetRunOut]

    @classmethod
    def of(cls, snapshot: DatasetSnapshot) -> DatasetOut:
        return cls(
            digest=snapshot.digest,
            model=snapshot.model,
            size=snapshot.size,
            path=snapshot.path,
            versions=snapshot.versions,
            first_used_at=snapshot.first_used_at,
            runs=[DatasetRunOut.of(run) for run in snapshot.runs],
        )


def _catalog(request: Request) -> DatasetCatalog:
    installation = request.app.state.installation
    return DatasetCatalog(installation.sessions, installation.storage, installation.registry)


Model = Annotated[str | None, Query(max_length=100, description="only this model's")]


@router.get("", response_model=list[DatasetOut], dependencies=[viewer])
def list_datasets(request: Request, model: Model = None) -> list[DatasetOut]:
    """Every snapshot, most recently used first, with the runs that used it."""
    return [DatasetOut.of(s) for s in _catalog(request).snapshots(model)]


@router.get(
    "/{digest}", response_model=DatasetOut, dependencies=[viewer], responses=error_responses(404)
)
def get_dataset(request: Request, digest: str, model: Model = None) -> DatasetOut:
    """One snapshot by its digest or a prefix of at least 6 hex digits."""
    return DatasetOut.of(_catalog(request).snapshot(digest, model))


@router.get("/{digest}/file", dependencies=[operator], responses=error_responses(404))
async def download_dataset(request: Request, digest: str, model: Model = None) -> Any:
    """The snapshot's bytes as CSV (operators: training data may be sensitive)."""
    catalog = _catalog(request)
    snapshot = await run_in_threadpool(catalog.snapshot, digest, model)
    stream = await run_in_threadpool(catalog.open, snapshot)
    name = f"{snapshot.model}-{snapshot.digest[:12]}.csv"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Length": str(snapshot.size),
    }
    return StreamingResponse(_chunks(stream), media_type="text/csv", headers=headers)


def _chunks(stream: Any) -> Any:
    with stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk
