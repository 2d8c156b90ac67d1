"""Recording accepted items: the store commit that makes an item durable."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.core.lifecycle import RETRYABLE_STATUSES, ItemStatus, status_values
from conveyor.store.models import Item, utcnow

NOT_DUPLICATE_STATUSES = status_values(RETRYABLE_STATUSES)  # ended without a result


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


def record_content_hash(record: Any) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
