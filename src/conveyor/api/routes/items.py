"""/api/v1/items: submit, list, inspect, cancel, retry; one item's result and artifacts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from conveyor.api import item_views
from conveyor.api.downloads import download_headers, download_media_type
from conveyor.api.errors import ApiError, error_responses
from conveyor.api.params import utc_naive
from conveyor.api.record_lines import stream_record_lines
from conveyor.api.schemas import (
    ItemDetailOut,
    ItemOut,
    ItemPage,
    RecordSubmission,
    ReferenceSubmission,
    RetryFailed,
    SubmissionOut,
)
from conveyor.api.security import operator, require, viewer
from conveyor.api.uploads import receive_upload
from conveyor.auth.roles import Role
from conveyor.auth.service import Principal
from conveyor.ingest.submit import Submission
from conveyor.installation import Installation
from conveyor.models.training import refuse_training_records
from conveyor.store import actions, queries
from conveyor.store.queries import ItemFilter

router = APIRouter(prefix="/items", tags=["items"])
MAX_RECORD_BYTES = 1 << 20
SUBMISSION_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "pipeline"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "pipeline": {"type": "string"},
                    "force": {"type": "boolean", "default": False},
                },
            }
        },
        "application/json": {"schema": RecordSubmission.model_json_schema()},
    },
}
ITEM_NOT_FOUND = error_responses(404)
Caller = Depends(require(Role.VIEWER))


def _installation(request: Request) -> Installation:
    return request.app.state.installation


def _submission_out(request: Request, submission: Submission) -> SubmissionOut:
    return SubmissionOut(
        item_id=submission.item_id,
        duplicate=submission.duplicate,
        input=submission.input_name,
        url=str(request.url_for("get_item", item_id=submission.item_id)),
    )


@router.post(
    "",
    status_code=201,
    response_model=SubmissionOut,
    dependencies=[operator],
    summary="Submit a file (multipart: file, pipeline[, force]) or a record (JSON)",
    responses={
        200: {"model": SubmissionOut, "description": "already submitted: the earlier item"},
        **error_responses(404, 413, 415),
    },
    openapi_extra={"requestBody": SUBMISSION_BODY},
)
async def submit_item(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    installation = _installation(request)
    if content_type.startswith("multipart/form-data"):
        submission = await receive_upload(request, installation)
    elif content_type.startswith("application/json"):
        submission = await _submit_record(request, installation)
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send multipart/form-data with 'file' and 'pipeline', or application/json with "
            "'pipeline' and 'record'",
        )
    body = _submission_out(request, submission).model_dump()
    return JSONResponse(body, status_code=200 if submission.duplicate else 201)


async def _read_record_body(request: Request) -> bytes:
    """The body, read only as far as the limit: a huge one never sits in memory."""
    too_large = ApiError(413, "too_large", f"a record may have at most {MAX_RECORD_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_RECORD_BYTES:
        raise too_large
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_RECORD_BYTES:
            raise too_large
    return bytes(raw)


async def _submit_record(request: Request, installation: Installation) -> Submission:
    raw = await _read_record_body(request)
    try:
        body = RecordSubmission.model_validate_json(raw)
    except ValidationError as error:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
            for e in error.errors()
        ]
        raise ApiError(
            422, "invalid_request", "the JSON body is not a valid record submission", details
        ) from error
    refuse_training_records(installation.registry.get(body.pipeline))
    [submission] = await run_in_threadpool(
        installation.submitter.submit_records,
        body.pipeline,
        [body.record],
        body.force,
        "api",
    )
    return submission


@router.post(
    "/records",
    dependencies=[operator],
    summary="Submit many records as JSON lines (application/x-ndjson), committed in batches",
    responses=error_responses(404, 422),
)
async def submit_records(
    request: Request, pipeline: str, force: bool = False, ids: bool = False
) -> dict[str, Any]:
    """One record per line, read as the body arrives and committed 5,000 at a time, so memory
    holds one batch. A bad line: the records before it stay accepted, nothing from it on is,
    and the answer is 422 with the line and the counts in `details`; send the fixed body again
    and the accepted records come back as duplicates. `ids=true` lists every item id in the
    answer (memory grows with the count; leave it off for millions)."""
    installation = _installation(request)
    refuse_training_records(installation.registry.get(pipeline))
    summary, item_ids = await stream_record_lines(
        installation.submitter, pipeline, request.stream(), force, keep_ids=ids
    )
    if summary.error is not None:
        raise ApiError(422, "bad_record_line", str(summary.error), summary.as_dict())
    return summary.as_dict() | ({"item_ids": item_ids} if ids else {})


@router.post(
    "/references",
    status_code=201,
    response_model=SubmissionOut,
    dependencies=[operator],
    summary="Submit a file by reference: a shared-mount path or an fsspec URL (s3://...)",
    responses={
        200: {"model": SubmissionOut, "description": "already submitted: the earlier item"},
        **error_responses(404, 422),
    },
)
async def submit_reference(request: Request, body: ReferenceSubmission) -> Any:
    """The file is not copied: the workers read it where it lies, so its size has no limit.
    Only paths and URLs under the installation's `reference_roots` are accepted (none by
    default); anything else answers 422 `reference_refused` saying which setting to change."""
    installation = _installation(request)
    refuse_training_records(installation.registry.get(body.pipeline))
    submission = await run_in_threadpool(
        installation.submitter.submit_reference,
        body.pipeline,
        body.url,
        body.force,
        "api",
        body.name,
    )
    out = _submission_out(request, submission).model_dump()
    return JSONResponse(out, status_code=200 if submission.duplicate else 201)


@router.get("", response_model=ItemPage)
def list_items(
    request: Request,
    pipeline: str | None = None,
    status: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    principal: Principal = Caller,
) -> ItemPage:
    """Newest first; pass `next_cursor` back as `cursor` for the next page. Viewers see errors
    without tracebacks and server paths (docs/security.md)."""
    filters = ItemFilter(
        pipeline,
        status,
        q,
        utc_naive(created_after, "created_after"),
        utc_naive(created_before, "created_before"),
    )
    return item_views.item_page(_installation(request), filters, cursor, limit, principal)


@router.get("/{item_id}", response_model=ItemDetailOut, responses=ITEM_NOT_FOUND)
def get_item(request: Request, item_id: str, principal: Principal = Caller) -> ItemDetailOut:
    """The item with every step attempt; viewers see errors and logs without tracebacks and
    server paths, operators and admins as stored."""
    return item_views.item_detail(_installation(request), item_id, principal)


@router.get("/{item_id}/result", dependencies=[viewer], responses=ITEM_NOT_FOUND)
def get_result(request: Request, item_id: str) -> Any:
    with _installation(request).sessions() as session:
        item = queries.get_item(session, item_id)
        result = queries.result_of(session, item.id)
    if result is None:
        raise ApiError(404, "no_result", f"item {item.id} is {item.status} and has no result yet")
    payload = {
        "item_id": item.id,
        "pipeline": item.pipeline,
        "pipeline_version": result.pipeline_version,
        "result": result.result,
    }
    headers = {"Content-Disposition": f'attachment; filename="{item.id}.json"'}
    return JSONResponse(json.loads(json.dumps(payload, default=str)), headers=headers)


@router.get("/{item_id}/artifacts/{path:path}", dependencies=[viewer], responses=ITEM_NOT_FOUND)
def get_artifact(request: Request, item_id: str, path: str) -> Response:
    installation = _installation(request)
    with installation.sessions() as session:
        item = queries.get_item(session, item_id)
    if path not in item_views.artifacts_of(installation, item):
        raise ApiError(404, "not_found", f"item {item.id} has no artifact {path!r}")
    media_type, headers = download_media_type(path), download_headers(path)
    local = installation.storage.local_path(item.work_dir, path)
    if local is not None:  # FileResponse answers Range requests: browsers seek in videos
        return FileResponse(local, media_type=media_type, headers=headers)
    stream = installation.storage.open(item.work_dir, path)
    return StreamingResponse(_chunks(stream), media_type=media_type, headers=headers)


def _chunks(stream: Any, size: int = 1 << 20) -> Any:
    with stream:
        while chunk := stream.read(size):
            yield chunk


@router.post(
    "/{item_id}/cancel",
    response_model=ItemOut,
    dependencies=[operator],
    responses=error_responses(404, 409),
)
def cancel_item(request: Request, item_id: str) -> ItemOut:
    with _installation(request).sessions.begin() as session:
        return ItemOut.of(actions.cancel_item(session, item_id))


@router.post(
    "/{item_id}/retry",
    response_model=ItemOut,
    dependencies=[operator],
    responses=error_responses(404, 409),
)
def retry_item(request: Request, item_id: str) -> ItemOut:
    with _installation(request).sessions.begin() as session:
        return ItemOut.of(actions.retry_item(session, item_id))


@router.post("/retry-failed", dependencies=[operator], responses=error_responses(404))
def retry_failed(request: Request, body: RetryFailed) -> dict[str, int]:
    if body.pipeline:
        _installation(request).registry.get(body.pipeline)
    with _installation(request).sessions.begin() as session:
        return {"queued": actions.retry_failed(session, body.pipeline)}
