"""Accepting files and records: store the input, recognise duplicates, commit the item.

An item is committed to the store before the submitter hears it was accepted; if the commit
fails, the stored copy is removed again and the submitter gets the error.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sqlalchemy.orm import Session, sessionmaker

from conveyor.errors import InputRejectedError
from conveyor.pipeline.registry import PipelineRegistry
from conveyor.pipeline.spec import Pipeline
from conveyor.storage.files import Storage
from conveyor.storage.names import display_name
from conveyor.store.submissions import (
    NewItem,
    find_duplicate,
    insert_items,
    record_content_hash,
)


def record_item(pipeline: Pipeline, record: Any, work_dir: str, source: str) -> NewItem:
    """A record item of ``pipeline``, recognised as a duplicate by the record's content."""
    content_hash = record_content_hash(record)
    return _item(pipeline, "record", content_hash, work_dir, source, record=record)


def file_item(
    pipeline: Pipeline,
    work_dir: str,
    stored_name: str,
    digest_and_size: tuple[str, int],
    original_name: str,
    source: str,
) -> NewItem:
    """A file item of ``pipeline`` for a file stored in ``work_dir`` (its sha256 and size)."""
    digest, size = digest_and_size
    inputs = {"input_name": original_name, "stored_name": stored_name, "input_size": size}
    return _item(pipeline, "file", digest, work_dir, source, **inputs)


def _item(
    pipeline: Pipeline, kind: str, content_hash: str, work_dir: str, source: str, **inputs: Any
) -> NewItem:
    return NewItem(pipeline.name, pipeline.version, kind, content_hash, work_dir, source, **inputs)


def _work_name() -> str:
    return f"record-{uuid.uuid4().hex[:8]}"


class IngestMetrics(Protocol):
    def item_accepted(self, pipeline: str, source: str, input_bytes: int | None) -> None: ...


class _NoMetrics:
    def item_accepted(self, pipeline: str, source: str, input_bytes: int | None) -> None:
        pass


@dataclass(frozen=True)
class Submission:
    item_id: str
    duplicate: bool
    input_name: str | None = None


class Submitter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        storage: Storage,
        registry: PipelineRegistry,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.sessions = sessions
        self.storage = storage
        self.registry = registry
        self.metrics = metrics or _NoMetrics()

    def _pipeline(self, name: str, kind: str) -> Pipeline:
        pipeline = self.registry.get(name)
        if kind not in pipeline.accepts:
            raise InputRejectedError(
                f"pipeline {name!r} takes {' or '.join(pipeline.accepts)} inputs, not {kind}s."
            )
        return pipeline

    def submit_records(
        self,
        pipeline_name: str,
        records: Iterable[Any],
        force: bool = False,
        source: str = "api",
    ) -> list[Submission]:
        pipeline = self._pipeline(pipeline_name, "record")
        news = [
            record_item(pipeline, record, self.storage.reserve_work_dir(_work_name()), source)
            for record in records
        ]
        return self._commit(news, force)

    def _commit(self, news: list[NewItem], force: bool) -> list[Submission]:
        submissions: list[Submission | None] = [None] * len(news)
        with self.sessions.begin() as session:
            fresh: list[tuple[int, NewItem]] = []
            for index, new in enumerate(news):
                existing = None if force else find_duplicate(session, new)
                if existing is not None:
                    submissions[index] = Submission(existing.id, True, new.input_name)
                else:
                    fresh.append((index, new))
            items = insert_items(session, [new for _, new in fresh])
            for (index, new), item in zip(fresh, items, strict=True):
                submissions[index] = Submission(item.id, False, new.input_name)
        for _, new in fresh:  # counted once committed
            self.metrics.item_accepted(new.pipeline, new.source, new.input_size)
        return [s for s in submissions if s is not None]

    def submit_stream(
        self,
        pipeline_name: str,
        stream: BinaryIO,
        name: str,
        force: bool = False,
        source: str = "api",
        max_bytes: int | None = None,
    ) -> Submission:
        self.file_pipeline(pipeline_name)
        stored = self.storage.store_stream(stream, name, max_bytes)
        return self.accept_stored_file(pipeline_name, stored, name, force, source)

    def file_pipeline(self, name: str) -> Pipeline:
        """The pipeline ``name`` if it takes files; a clear error otherwise."""
        return self._pipeline(name, "file")

    def accept_stored_file(
        self,
        pipeline_name: str,
        stored: tuple[str, str, str, int],
        name: str,
        force: bool = False,
        source: str = "api",
    ) -> Submission:
        """Probe and record a file already in its work folder (``Storage.receive``), given as
        (work_dir, stored_name, sha256, size); if it is not accepted, the stored copy goes."""
        work_dir, stored_name, digest, size = stored
        try:
            pipeline = self.file_pipeline(pipeline_name)
            self.check_stored_file(pipeline, work_dir, stored_name)
        except BaseException:
            self.storage.remove_work_dir(work_dir)
            raise
        return self._commit_file(
            pipeline, work_dir, stored_name, digest, size, display_name(name), force, source
        )

    def check_stored_file(self, pipeline: Pipeline, work_dir: str, stored_name: str) -> None:
        """Let the pipeline probe the content before the item is accepted."""
        if pipeline.check_input is None:
            return
        local = self.storage.local_path(work_dir, stored_name)
        if local is not None:
            pipeline.check_input(local)
            return
        with tempfile.TemporaryDirectory(prefix="conveyor-check-") as folder:
            copy = Path(folder) / stored_name
            self.storage.download(work_dir, stored_name, copy)
            pipeline.check_input(copy)

    def submit_file(
        self, pipeline_name: str, path: Path, force: bool = False, source: str = "cli"
    ) -> Submission:
        if not path.is_file():
            raise InputRejectedError(f"{path} is not a readable file; check the path.")
        with path.open("rb") as stream:
            return self.submit_stream(pipeline_name, stream, path.name, force, source)

    def _commit_file(
        self,
        pipeline: Pipeline,
        work_dir: str,
        stored_name: str,
        digest: str,
        size: int,
        original_name: str,
        force: bool,
        source: str,
    ) -> Submission:
        new = file_item(pipeline, work_dir, stored_name, (digest, size), original_name, source)
        try:
            submission = self._commit([new], force)[0]
        except BaseException:
            self.storage.remove_work_dir(work_dir)
            raise
        if submission.duplicate:
            self.storage.remove_work_dir(work_dir)  # the earlier item keeps its own copy
        return submission

    def accept_moved_file(
        self,
        pipeline_name: str,
        work_dir: str,
        stored_name: str,
        original_name: str,
        source: str = "inbox",
    ) -> Submission:
        """Record an item for a file already moved into its work folder (the inbox path)."""
        pipeline = self._pipeline(pipeline_name, "file")
        self.check_stored_file(pipeline, work_dir, stored_name)
        digest = self.storage.sha256(work_dir, stored_name)
        size = self.storage.size(work_dir, stored_name)
        new = file_item(pipeline, work_dir, stored_name, (digest, size), original_name, source)
        return self._commit([new], force=False)[0]
