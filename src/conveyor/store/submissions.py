"""Recording accepted items: the store commit that makes an item durable."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from conveyor.core.lifecycle import ItemStatus
from conveyor.store import item_rows
from conveyor.store.item_rows import ITEMS, NOT_DUPLICATE_STATUSES
from conveyor.store.models import Item, utcnow


@dataclass(frozen=True)
class NewItem:
    pipeline: str
    pipeline_version: str
    kind: str
    content_hash: str
    work_dir: str
    source: str = "api"
    input_name: str | None = None
    stored_name: str | None = None
    input_size: int | None = None
    record: Any = None
    input_url: str | None = None  # a file submitted by reference: read there, not copied
    record_json: str | None = None  # the record as stored, if already encoded


# json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False), the form every
# stored content hash was computed from; one encoder, not one built per call by json.dumps.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_content_hash(record: Any) -> str:
    return hashlib.sha256(_CANONICAL.encode(record).encode()).hexdigest()


def record_hash_and_json(record: Any) -> tuple[str, str]:
    """The record's content hash and the JSON text to store, from one canonical encoding."""
    canonical = _CANONICAL.encode(record)
    content_hash = hashlib.sha256(canonical.encode()).hexdigest()
    return content_hash, item_rows.stored_record_json(record, canonical)


def find_duplicate(session: Session, new: NewItem) -> Item | None:
    """An earlier item with the same content for the same pipeline version that did not fail."""
    return session.scalars(
        select(Item)
        .where(
            Item.pipeline == new.pipeline,
            Item.pipeline_version == new.pipeline_version,
            Item.content_hash == new.content_hash,
            Item.status.not_in(NOT_DUPLICATE_STATUSES),
        )
        .order_by(Item.created_at)
        .limit(1)
    ).first()


def insert_items(session: Session, new_items: list[NewItem]) -> list[Item]:
    now = utcnow()
    items = [
        Item(
            id=uuid.uuid4().hex,
            pipeline=new.pipeline,
            pipeline_version=new.pipeline_version,
            kind=new.kind,
            source=new.source,
            input_name=new.input_name,
            stored_name=new.stored_name,
            input_size=new.input_size,
            input_url=new.input_url,
            record=new.record,
            content_hash=new.content_hash,
            work_dir=new.work_dir,
            status=ItemStatus.QUEUED.value,
            cancel_requested=False,
            created_at=now,
            queued_at=now,
            updated_at=now,
            lease_generation=0,
        )
        for new in new_items
    ]
    session.add_all(items)
    return items


def find_duplicates(
    session: Session, pipeline: str, version: str, content_hashes: list[str]
) -> dict[str, str]:
    """The earliest item id per content hash, for the hashes that already have an item of
    ``pipeline`` ``version`` that did not fail."""
    return item_rows.find_duplicates(session.connection(), pipeline, version, content_hashes)


def insert_item_rows(session: Session, new_items: list[NewItem]) -> list[str]:
    """Insert many items at once in the session's transaction; returns their ids in order
    (PostgreSQL: COPY; SQLite: one executemany; no ORM objects either way)."""
    return item_rows.insert_item_rows(session.connection(), new_items)


class PlannerStatistics:
    """Refreshes PostgreSQL's statistics of the items table as bulk inserts grow it.

    Without statistics (a fresh table that autovacuum has not analysed yet) the planner takes
    the content index for (pipeline, version) only and filters the hashes row by row, so the
    duplicate lookup of every batch scans all earlier items: 100,000 records took 750 s. An
    ANALYZE after 5,000 inserted rows, then each time the count doubles, keeps it an index
    lookup (PostgreSQL's advice after bulk loading); SQLite needs none of this."""

    def __init__(self, first: int = 5_000) -> None:
        self._inserted = 0
        self._next = first

    def inserted(self, session_maker: Any, count: int) -> None:
        self._inserted += count
        if self._inserted < self._next:
            return
        self._next = 2 * self._inserted
        with session_maker.begin() as session:
            if session.connection().dialect.name == "postgresql":
                session.execute(text(f"ANALYZE {ITEMS.name}"))
