"""Accepting files and records: store the input, recognise duplicates, commit the item.

An item is committed to the store before the submitter hears it was accepted; if the commit
fails, the stored copy is removed again and the submitter gets the error.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sqlalchemy.orm import Session, sessionmaker

from conveyor.errors import InputRejectedError
from conveyor.ingest.records import BadRecordLine, RecordBatch, RecordSummary
from conveyor.ingest.references import Reference, resolve_reference
from conveyor.pipeline.registry import PipelineRegistry
from conveyor.pipeline.spec import Pipeline
from conveyor.storage.files import Storage
from conveyor.storage.names import display_name, safe_file_name
from conveyor.store.submissions import (
    NewItem,
    PlannerStatistics,
    find_duplicates,
    insert_item_rows,
    record_hash_and_json,
)


def record_item(pipeline: Pipeline, record: Any, work_dir: str, source: str) -> NewItem:
    """A record item of ``pipeline``, recognised as a duplicate by the record's content."""
    content_hash, record_json = record_hash_and_json(record)
    return _item(
        pipeline, "record", content_hash, work_dir, source, record=record, record_json=record_json
    )


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


def reference_item(
    pipeline: Pipeline, reference: Reference, work_dir: str, name: str, source: str
) -> NewItem:
    """A file item of ``pipeline`` read where ``reference`` points (no copy is stored)."""
    return _item(
        pipeline,
        "file",
        reference.content_hash(),
        work_dir,
        source,
        input_name=name,
        stored_name=safe_file_name(reference.name),
        input_size=reference.size,
        input_url=reference.url,
    )


def _item(
    pipeline: Pipeline, kind: str, content_hash: str, work_dir: str, source: str, **inputs: Any
) -> NewItem:
    return NewItem(pipeline.name, pipeline.version, kind, content_hash, work_dir, source, **inputs)


def _existing_items(session: Session, news: list[NewItem]) -> dict[str, str | int]:
    known: dict[str, str | int] = {}
    for pipeline, version in {(new.pipeline, new.pipeline_version) for new in news}:
        hashes = [
            n.content_hash for n in news if (n.pipeline, n.pipeline_version) == (pipeline, version)
        ]
        known.update(find_duplicates(session, pipeline, version, hashes))
    return known


def _place(
    news: list[NewItem], known: dict[str, str | int], force: bool
) -> tuple[list[NewItem], list[tuple[str | int, bool]]]:
    """The items to insert, and per new item (an earlier item's id or an index into the
    inserted ones, duplicate?). ``known`` maps content hashes to earlier items' ids."""
    fresh: list[NewItem] = []
    slots: list[tuple[str | int, bool]] = []
    for new in news:
        where = None if force else known.get(new.content_hash)
        if where is not None:
            slots.append((where, True))
            continue
        if not force:
            known[new.content_hash] = len(fresh)
        slots.append((len(fresh), False))
        fresh.append(new)
    return fresh, slots


class IngestMetrics(Protocol):
    def item_accepted(
        self, pipeline: str, source: str, input_bytes: int | None, count: int = 1
    ) -> None: ...


class _NoMetrics:
    def item_accepted(
        self, pipeline: str, source: str, input_bytes: int | None, count: int = 1
    ) -> None:
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
        reference_roots: Sequence[str] = (),
    ) -> None:
        self.sessions = sessions
        self.storage = storage
        self.registry = registry
        self.metrics = metrics or _NoMetrics()
        self.reference_roots = tuple(reference_roots)
        self.statistics = PlannerStatistics()

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
        """Records as items, in one transaction (for a few; stream many with
        ``submit_record_batches``)."""
        pipeline = self._pipeline(pipeline_name, "record")
        return self._commit(self._record_items(pipeline, records, source), force)

    def submit_record_batches(
        self,
        pipeline_name: str,
        batches: Iterable[RecordBatch],
        force: bool = False,
        source: str = "api",
        on_batch: Callable[[RecordBatch, list[Submission]], None] | None = None,
    ) -> RecordSummary:
        """Commit each batch in its own transaction as it arrives; a bad line ends the stream
        with the records before it accepted (``summary.error`` says where)."""
        pipeline = self._pipeline(pipeline_name, "record")
        summary = RecordSummary()
        try:
            for batch in batches:
                submissions = self._commit(
                    self._record_items(pipeline, batch.records, source), force
                )
                summary.add(submissions)
                if on_batch is not None:
                    on_batch(batch, submissions)
        except BadRecordLine as error:
            summary.error = error
        return summary

    def _record_items(
        self, pipeline: Pipeline, records: Iterable[Any], source: str
    ) -> list[NewItem]:
        records = list(records)
        work_dirs = self.storage.reserve_record_work_dirs(len(records))
        return [
            record_item(pipeline, record, work_dir, source)
            for record, work_dir in zip(records, work_dirs, strict=True)
        ]

    def _commit(self, news: list[NewItem], force: bool) -> list[Submission]:
        """One transaction: duplicates (of earlier items, or earlier in ``news``) point to
        the first item with that content unless ``force``; the rest are inserted at once."""
        with self.sessions.begin() as session:
            known = {} if force else _existing_items(session, news)
            fresh, slots = _place(news, known, force)
            ids = insert_item_rows(session, fresh)
        self.statistics.inserted(self.sessions, len(fresh))
        self._count_accepted(fresh)
        return [
            Submission(ids[where] if isinstance(where, int) else where, duplicate, new.input_name)
            for (where, duplicate), new in zip(slots, news, strict=True)
        ]

    def _count_accepted(self, fresh: list[NewItem]) -> None:
        """Once committed: one metrics call per pipeline and source, not one per item."""
        totals: dict[tuple[str, str], list[int]] = {}
        for new in fresh:
            count_and_bytes = totals.setdefault((new.pipeline, new.source), [0, 0])
            count_and_bytes[0] += 1
            count_and_bytes[1] += new.input_size or 0
        for (pipeline, source), (count, input_bytes) in totals.items():
            self.metrics.item_accepted(pipeline, source, input_bytes or None, count)

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

    def submit_reference(
        self,
        pipeline_name: str,
        location: str,
        force: bool = False,
        source: str = "api",
        name: str | None = None,
    ) -> Submission:
        """A file item for the file at ``location`` (a path on a shared mount, or an fsspec
        URL), inside ``reference_roots``; its bytes stay there and are read by the workers."""
        pipeline = self.file_pipeline(pipeline_name)
        new = self.reference_item(pipeline, location, source, name)
        return self._commit([new], force)[0]

    def reference_item(
        self, pipeline: Pipeline, location: str, source: str, name: str | None = None
    ) -> NewItem:
        """Check ``location`` (roots, the file, the pipeline's probe of a local file) and
        describe its item; ``ReferenceRefusedError`` or the probe's error otherwise."""
        reference = resolve_reference(location, self.reference_roots)
        if reference.is_local and pipeline.check_input is not None:
            pipeline.check_input(Path(reference.url))
        work_dir = self.storage.reserve_work_dir(reference.name)
        shown = display_name(name or reference.name)
        return reference_item(pipeline, reference, work_dir, shown, source)

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
