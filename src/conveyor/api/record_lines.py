"""The API's bulk record submission: JSON lines from a request body, committed in batches."""

from __future__ import annotations

from collections.abc import AsyncIterable

from starlette.concurrency import run_in_threadpool

from conveyor.ingest.records import (
    BadRecordLine,
    JsonlBatcher,
    RecordBatch,
    RecordSummary,
    lines_of_chunks,
)
from conveyor.ingest.submit import Submission, Submitter


async def stream_record_lines(
    submitter: Submitter,
    pipeline: str,
    chunks: AsyncIterable[bytes],
    force: bool,
    keep_ids: bool,
) -> tuple[RecordSummary, list[str]]:
    """Reads lines as they arrive; each full batch is committed in a worker thread (one
    transaction) before more of the body is read, so a slow database slows the sender."""
    summary, item_ids = RecordSummary(), list[str]()
    batcher = JsonlBatcher("body")

    def keep(_: RecordBatch, submissions: list[Submission]) -> None:
        if keep_ids:
            item_ids.extend(s.item_id for s in submissions)

    async def commit(batch: RecordBatch | None) -> None:
        if batch is not None:
            summary.merge(
                await run_in_threadpool(
                    submitter.submit_record_batches, pipeline, [batch], force, "api", keep
                )
            )

    try:
        async for line in lines_of_chunks(chunks):
            await commit(batcher.feed(line))
    except BadRecordLine as error:
        summary.error = error
    await commit(batcher.take())
    return summary, item_ids
