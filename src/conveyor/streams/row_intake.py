"""Turning a batch of a training source's messages into labelled rows of its model: one
transaction for the rows, the identities of the messages they came from and the dead letters.

The rows feed the model's data trigger (``retrain_after_rows`` / ``retrain_after_minutes``,
fired by `conveyor up`), exactly like rows added with `conveyor models add-rows`; a message
whose identity the store holds already is a duplicate and adds no row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from conveyor.errors import ConfigurationError
from conveyor.models.schema import TableSchema
from conveyor.models.training import TrainingPipeline
from conveyor.pipeline.spec import Pipeline
from conveyor.store.models import LabelledRow, utcnow
from conveyor.streams.brokers.base import Message
from conveyor.streams.identities import add_dead_letters, fresh_messages
from conveyor.streams.intake import BatchOutcome
from conveyor.streams.messages import Poison, RecordCheck
from conveyor.streams.tables import StreamMessage
from conveyor.streams.training_rows import RowInput, message_row

ROW_SOURCE_PREFIX = "stream:"  # LabelledRow.source of a row a stream made: stream:<source>


def training_schema(pipeline: Pipeline) -> TableSchema:
    """The dataset schema that a training source's messages are checked against."""
    if not isinstance(pipeline, TrainingPipeline) or pipeline.schema is None:
        raise ConfigurationError(
            f"{pipeline.name!r} cannot be trained from a stream: only a training pipeline "
            "with a dataset schema takes labelled rows (see `conveyor models list`)."
        )
    return pipeline.schema


class RowIntake:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def take(
        self,
        source: str,
        pipeline: Pipeline,
        messages: Sequence[Message],
        check: RecordCheck | None = None,
    ) -> BatchOutcome:
        """Commit the rows ``messages`` become; returns only once they are durable."""
        schema = training_schema(pipeline)
        model = getattr(pipeline, "model_name", None) or pipeline.name
        for attempt in (1, 2):
            fresh = fresh_messages(self.sessions, source, messages)
            entries = [(message, message_row(schema, message.payload, check)) for message in fresh]
            try:
                self._commit(source, model, entries)
            except IntegrityError:  # another consumer took some of them first: look again
                if attempt == 2:
                    raise
                continue
            return _outcome(entries, len(messages) - len(fresh))
        raise AssertionError("unreachable")

    def _commit(
        self, source: str, model: str, entries: list[tuple[Message, RowInput | Poison]]
    ) -> None:
        now = utcnow()
        rows = [(m, parsed) for m, parsed in entries if isinstance(parsed, RowInput)]
        with self.sessions.begin() as session:
            row_ids = _insert_rows(session, model, source, [parsed for _, parsed in rows], now)
            row_of = {m.identity: row_id for (m, _), row_id in zip(rows, row_ids, strict=True)}
            identities = [
                {
                    "source": source,
                    "identity": message.identity,
                    "row_id": row_of.get(message.identity),
                    "received_at": now,
                }
                for message, _ in entries
            ]
            if identities:
                session.execute(insert(StreamMessage), identities)
            poison = [(m, p) for m, p in entries if isinstance(p, Poison)]
            add_dead_letters(session, source, poison, now)


def _insert_rows(
    session: Session, model: str, source: str, rows: list[RowInput], now: Any
) -> list[int]:
    if not rows:
        return []
    values = [
        {
            "model": model,
            "values": row.cells,
            "payload": row.payload,
            "source": f"{ROW_SOURCE_PREFIX}{source}"[:200],
            "received_at": now,
        }
        for row in rows
    ]
    statement = insert(LabelledRow).returning(LabelledRow.id, sort_by_parameter_order=True)
    return list(session.scalars(statement, values))


def _outcome(entries: list[tuple[Message, RowInput | Poison]], duplicates: int) -> BatchOutcome:
    outcome = BatchOutcome(duplicates=duplicates)
    for _, parsed in entries:
        if isinstance(parsed, Poison):
            outcome.dead_letters[parsed.code] += 1
        else:
            outcome.rows += 1
    return outcome
