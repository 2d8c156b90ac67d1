"""Receiving uploads: size limit first, then stream to storage, probe, commit.

Starlette parses the multipart body into a spooled temporary file (at most 1 MiB in memory),
which is then copied to storage in 1 MiB chunks, so memory stays flat whatever the size.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from conveyor.api.errors import ApiError
from conveyor.ingest.submit import Submission
from conveyor.installation import Installation

MULTIPART_OVERHEAD = 64 * 1024


async def receive_upload(request: Request, installation: Installation) -> Submission:
    limit = installation.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise _too_large(limit)
    form = await request.form(max_files=1, max_fields=5)
    upload, pipeline = form.get("file"), form.get("pipeline")
    if not isinstance(upload, UploadFile):
        raise ApiError(
            422,
            "invalid_request",
            "the form needs a 'file' part holding the file",
            [{"field": "file", "problem": "missing"}],
        )
    if not isinstance(pipeline, str) or not pipeline:
        raise ApiError(
            422,
            "invalid_request",
            "the form needs a 'pipeline' field",
            [{"field": "pipeline", "problem": "missing"}],
        )
    force = str(form.get("force", "false")).lower() in ("1", "true", "yes", "on")
    try:
        return await run_in_threadpool(
            installation.submitter.submit_stream,
            pipeline,
            upload.file,
            upload.filename or "upload",
            force=force,
            source="upload",
            max_bytes=limit,
        )
    finally:
        await upload.close()


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"the upload is larger than the limit of {limit} bytes; raise max_upload_bytes or "
        "split the file",
    )
