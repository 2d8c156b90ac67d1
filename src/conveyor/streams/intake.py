"""Turning a batch of messages into items: one transaction for the items, the identities of the
messages they came from and the dead letters, so a batch is taken whole or not at all.

A message whose identity the store already holds is a duplicate and changes nothing; that is
what makes a broker's redelivery (after a crash before its ack) harmless.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from conveyor.errors import ConveyorError
from conveyor.ingest.references import ReferenceRefusedError
from conveyor.ingest.submit import Submitter, file_item, record_item
from conveyor.pipeline.spec import Pipeline
from conveyor.store.models import utcnow
from conveyor.store.submissions import NewItem, insert_item_rows
from conveyor.streams.brokers.base import Message
from conveyor.streams.identities import add_dead_letters, fresh_messages
from conveyor.streams.messages import (
    FileInput,
    Poison,
    RecordCheck,
    RecordInput,
    ReferenceInput,
    parse_message,
)
from conveyor.streams.tables import StreamMessage

ITEM_SOURCE = "stream"  # Item.source of every item a stream made


@dataclass
class BatchOutcome:
    items: int = 0
    rows: int = 0  # labelled rows of a training source (streams/row_intake.py)
    duplicates: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)  # by Poison.code


@dataclass(frozen=True)
class _Entry:
    message: Message
    new_item: NewItem | None = None
    poison: Poison | None = None


class MessageIntake:
    def __init__(self, sessions: sessionmaker[Session], submitter: Submitter) -> None:
        self.sessions = sessions
        self.submitter = submitter
        self.storage = submitter.storage

    def take(
        self,
        source: str,
        pipeline: Pipeline,
        messages: Sequence[Message],
        check: RecordCheck | None = None,
    ) -> BatchOutcome:
        """Commit what ``messages`` become; returns only once it is durable."""
        for attempt in (1, 2):
            fresh = fresh_messages(self.sessions, source, messages)
            entries = [self._entry(pipeline, message, check) for message in fresh]
            try:
                self._commit(source, entries)
            except IntegrityError:  # another consumer took some of them first: look again
                self._discard_files(entries)
                if attempt == 2:
                    raise
                continue
            return self._outcome(pipeline, entries, len(messages) - len(fresh))
        raise AssertionError("unreachable")

    def _entry(self, pipeline: Pipeline, message: Message, check: RecordCheck | None) -> _Entry:
        references = bool(self.submitter.reference_roots)
        parsed = parse_message(
            message.payload, pipeline.accepts, self.storage.url, check, references
        )
        if isinstance(parsed, Poison):
            return _Entry(message, poison=parsed)
        if isinstance(parsed, ReferenceInput):
            return self._reference_entry(pipeline, message, parsed)
        if isinstance(parsed, RecordInput):
            work_dir = self.storage.reserve_work_dir(f"record-{uuid.uuid4().hex[:8]}")
            return _Entry(message, record_item(pipeline, parsed.record, work_dir, ITEM_SOURCE))
        return self._file_entry(pipeline, message, parsed)

    def _file_entry(self, pipeline: Pipeline, message: Message, named: FileInput) -> _Entry:
        """A copy of the named file in its own work folder (the original stays where it is)."""
        try:
            with self.storage.open("", named.path) as original:
                stored = self.storage.store_stream(original, named.name)
        except (FileNotFoundError, IsADirectoryError):
            return _Entry(message, poison=Poison("file_missing", f"no file at {named.path!r}"))
        work_dir, stored_name, digest, size = stored
        try:
            self.submitter.check_stored_file(pipeline, work_dir, stored_name)
        except ConveyorError as error:
            self.storage.remove_work_dir(work_dir)
            return _Entry(message, poison=Poison("file_rejected", str(error)))
        new = file_item(pipeline, work_dir, stored_name, (digest, size), named.name, ITEM_SOURCE)
        return _Entry(message, new)

    def _reference_entry(
        self, pipeline: Pipeline, message: Message, named: ReferenceInput
    ) -> _Entry:
        """A file item read where the message says (inside reference_roots), not copied."""
        try:
            new = self.submitter.reference_item(pipeline, named.location, ITEM_SOURCE, named.name)
        except ReferenceRefusedError as error:
            return _Entry(message, poison=Poison("reference_refused", str(error)))
        except ConveyorError as error:
            return _Entry(message, poison=Poison("file_rejected", str(error)))
        return _Entry(message, new)

    def _commit(self, source: str, entries: list[_Entry]) -> None:
        now = utcnow()
        with self.sessions.begin() as session:
            made = [entry for entry in entries if entry.new_item is not None]
            # Plain rows, no ORM objects (COPY on PostgreSQL): most of a batch's time otherwise.
            ids = insert_item_rows(session, [entry.new_item for entry in made if entry.new_item])
            item_of = {id(entry): item_id for entry, item_id in zip(made, ids, strict=True)}
            rows = [
                {
                    "source": source,
                    "identity": entry.message.identity,
                    "item_id": item_of.get(id(entry)),
                    "received_at": now,
                }
                for entry in entries
            ]
            if rows:
                session.execute(insert(StreamMessage), rows)
            poison = [(entry.message, entry.poison) for entry in entries if entry.poison]
            add_dead_letters(session, source, poison, now)

    def _discard_files(self, entries: list[_Entry]) -> None:
        for entry in entries:
            if entry.new_item is not None and entry.new_item.kind == "file":
                self.storage.remove_work_dir(entry.new_item.work_dir)

    def _outcome(self, pipeline: Pipeline, entries: list[_Entry], duplicates: int) -> BatchOutcome:
        outcome = BatchOutcome(duplicates=duplicates)
        for entry in entries:
            if entry.poison is not None:
                outcome.dead_letters[entry.poison.code] += 1
                continue
            outcome.items += 1
            size = entry.new_item.input_size if entry.new_item else None
            self.submitter.metrics.item_accepted(pipeline.name, ITEM_SOURCE, size)
        return outcome
