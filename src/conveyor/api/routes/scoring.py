"""/api/v1/models/{name}/batch: start a batch scoring job (operators) and follow it.

The job is the one ``conveyor score`` runs (docs/scoring.md), in a thread of the API process on
its Ray (under ``conveyor up``, the engine's), with a heartbeat: if this process dies, a
``conveyor up`` takes the job over and resumes it (conveyor/scoring/worker.py). Inputs and
output are paths relative to the storage root, checked never to leave it: the API reads and
writes only Conveyor's storage.
"""

from __future__ import annotations

import posixpath
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from conveyor.api.errors import error_responses
from conveyor.api.security import operator, viewer
from conveyor.api.timestamps import UtcDatetime
from conveyor.auth.service import Principal
from conveyor.errors import InputRejectedError

router = APIRouter(prefix="/models", tags=["models"])
ModelName = Annotated[
    str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="Model name")
]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[str] = Field(
        min_length=1, max_length=100, description="files, globs or folders under the storage root"
    )
    output: str = Field(description="output folder under the storage root; names the job")
    version: int | None = None
    alias: str | None = None
    columns: list[str] | None = None
    format: Literal["parquet", "csv"] = "parquet"
    max_rejects: int | None = Field(None, ge=0)


class BatchJob(BaseModel):
    id: str
    model: str
    version: int
    dataset_sha256: str | None
    output: str
    inputs: list[str]
    status: str
    requested_by: str
    parts_total: int
    parts_done: int
    rows_total: int
    rows_scored: int
    rows_rejected: int
    error: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    finished_at: UtcDatetime | None


@router.post(
    "/{name}/batch", status_code=202, response_model=BatchJob, responses=error_responses(404, 409)
)
def start_batch(
    request: Request, name: ModelName, body: BatchRequest, principal: Principal = operator
) -> BatchJob:
    """Plan the job (or find the unfinished one writing ``output``) and start scoring it."""
    from conveyor.scoring.service import BatchScoring, ScoreRequest
    from conveyor.scoring.worker import API_REQUESTER, run_with_heartbeat

    storage_url = request.app.state.installation.storage.url
    scoring = BatchScoring(request.app.state.installation)
    prepared = scoring.prepare(
        ScoreRequest(
            model=name,
            inputs=tuple(in_storage(storage_url, given) for given in body.inputs),
            output=in_storage(storage_url, body.output),
            version=body.version,
            alias=body.alias,
            columns=tuple(body.columns) if body.columns else None,
            output_format=body.format,
            max_rejects=body.max_rejects,
            requested_by=f"{API_REQUESTER}{principal.name}",
        )
    )
    threading.Thread(
        target=run_with_heartbeat,
        args=(scoring, prepared),
        name=f"scoring-{prepared.job_id}",
        daemon=True,
    ).start()
    return _job(scoring.status(prepared.job_id).as_dict())


@router.get(
    "/{name}/batch/{job_id}",
    response_model=BatchJob,
    responses=error_responses(404),
    dependencies=[viewer],
)
def batch_status(request: Request, name: ModelName, job_id: str) -> BatchJob:
    from conveyor.scoring.jobs import ScoringJobNotFoundError
    from conveyor.scoring.service import BatchScoring

    view = BatchScoring(request.app.state.installation).status(job_id)
    if view.model != name:
        raise ScoringJobNotFoundError(f"model {name!r} has no scoring job {job_id!r}.")
    return _job(view.as_dict())


def _job(view: dict[str, Any]) -> BatchJob:
    return BatchJob(**{key: view[key] for key in BatchJob.model_fields})


def in_storage(storage_url: str, given: str) -> str:
    """A path relative to the storage root as a full URL or path; refuses what leaves it."""
    normalised = posixpath.normpath(given.strip())
    if (
        not given.strip()
        or "://" in given
        or normalised == ".."
        or normalised.startswith(("../", "/"))
        or "\x00" in given
    ):
        raise InputRejectedError(
            f"{given!r} is not a path under the storage root; give a relative path such as "
            "'batch/visits/*.csv' (the API reads and writes Conveyor's storage only)."
        )
    return f"{storage_url.rstrip('/')}/{normalised}"
