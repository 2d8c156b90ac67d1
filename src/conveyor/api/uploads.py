"""Receiving uploads: the multipart body is parsed as it arrives and the file part is written
straight into its work folder, so memory stays flat whatever the size, the file is written once,
and an upload over the limit is stopped at the limit rather than after it has all arrived.

Storage and the store are blocking, so they run in the thread pool, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool

from conveyor.api.errors import ApiError
from conveyor.ingest.submit import Submission
from conveyor.installation import Installation
from conveyor.storage.files import IncomingFile

MULTIPART_OVERHEAD = 64 * 1024
MAX_FIELD_BYTES = 1024
MAX_HEADER_BYTES = 8 * 1024
MAX_PARTS = 10
WRITE_BYTES = 1 << 20
TRUE_WORDS = ("1", "true", "yes", "on")


def _invalid(message: str, field: str | None = None) -> ApiError:
    details = [{"field": field, "problem": message}] if field else None
    return ApiError(422, "invalid_request", message, details)


class UploadForm:
    """State for python-multipart's streaming parser: small text fields are kept, the bytes of
    the one file part wait in ``pending`` until the caller writes them out."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.pending = bytearray()
        self.complete = False
        self._parts = 0
        self._headers: dict[bytes, bytes] = {}
        self._header = (bytearray(), bytearray())
        self._name = ""
        self._is_file = False
        self._value = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._grow(0, data[start:end]),
            "on_header_value": lambda data, start, end: self._grow(1, data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise _invalid(f"the form has more than {MAX_PARTS} parts")
        self._headers, self._is_file, self._value = {}, False, bytearray()

    def _grow(self, which: int, data: bytes) -> None:
        self._header[which].extend(data)
        if len(self._header[which]) > MAX_HEADER_BYTES:
            raise _invalid("a part header of the form is too long")

    def _header_end(self) -> None:
        name, value = self._header
        self._headers[bytes(name).lower()] = bytes(value)
        name.clear()
        value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        if b"name" not in options:
            raise _invalid("every part of the form needs a Content-Disposition name")
        self._name = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            return
        if self._name != "file":
            raise _invalid(f"only the 'file' part may hold a file, not {self._name!r}", "file")
        if self.filename is not None:
            raise _invalid("send one file per request", "file")
        self.filename = options[b"filename"].decode("utf-8", "replace") or "upload"
        self._is_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.pending.extend(data[start:end])
            return
        self._value.extend(data[start:end])
        if len(self._value) > MAX_FIELD_BYTES:
            raise _invalid(f"{self._name!r} is longer than {MAX_FIELD_BYTES} bytes", self._name)

    def _part_end(self) -> None:
        if not self._is_file:
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    def _end(self) -> None:
        self.complete = True


async def receive_upload(request: Request, installation: Installation) -> Submission:
    limit = installation.settings.max_upload_bytes
    _refuse_declared_oversize(request, limit)
    form = UploadForm()
    parser = MultipartParser(_boundary(request), form.callbacks())
    writer = _Writer(installation, form, limit)
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if len(form.pending) >= WRITE_BYTES:
                await writer.flush()
        parser.finalize()
        if not form.complete:
            raise _invalid("the multipart body ended before its closing boundary")
        pipeline = _pipeline_field(form)
        if form.filename is None:
            raise _invalid("the form needs a 'file' part holding the file", "file")
        stored = await writer.finish()
    except FormParserError as error:
        await writer.abort()
        raise _invalid(f"the multipart body is malformed: {error}") from None
    except BaseException:
        await writer.abort()
        raise
    force = form.fields.get("force", "false").strip().lower() in TRUE_WORDS
    return await run_in_threadpool(
        installation.submitter.accept_stored_file,
        pipeline,
        stored,
        form.filename,
        force,
        "upload",
    )


class _Writer:
    """Hands the file's bytes to storage in the thread pool; opened with the first bytes, after
    checking the pipeline when the form named it before the file (as browsers and curl do)."""

    def __init__(self, installation: Installation, form: UploadForm, limit: int) -> None:
        self.installation = installation
        self.form = form
        self.limit = limit
        self.incoming: IncomingFile | None = None

    async def flush(self) -> None:
        if self.incoming is None:
            self.incoming = await run_in_threadpool(self._open)
        data = bytes(self.form.pending)
        self.form.pending.clear()
        await run_in_threadpool(self.incoming.write, data)

    def _open(self) -> IncomingFile:
        if "pipeline" in self.form.fields:
            self.installation.submitter.file_pipeline(_pipeline_field(self.form))
        return self.installation.storage.receive(self.form.filename or "upload", self.limit)

    async def finish(self) -> tuple[str, str, str, int]:
        await self.flush()
        assert self.incoming is not None
        incoming, self.incoming = self.incoming, None
        return await run_in_threadpool(incoming.finish)

    async def abort(self) -> None:
        if self.incoming is not None:
            incoming, self.incoming = self.incoming, None
            await run_in_threadpool(incoming.abort)


def _pipeline_field(form: UploadForm) -> str:
    pipeline = form.fields.get("pipeline", "").strip()
    if not pipeline:
        raise _invalid("the form needs a 'pipeline' field", "pipeline")
    return pipeline


def _boundary(request: Request) -> bytes:
    _, options = parse_options_header(request.headers.get("content-type"))
    boundary: Any = options.get(b"boundary")
    if not boundary:
        raise _invalid("multipart/form-data needs a boundary parameter in its Content-Type")
    return boundary


def _refuse_declared_oversize(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise ApiError(
            413,
            "too_large",
            f"the upload is larger than the limit of {limit} bytes; raise max_upload_bytes or "
            "split the file",
        )
