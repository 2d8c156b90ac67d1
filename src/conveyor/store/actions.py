"""What operators do to items: cancel and retry."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.core.lifecycle import (
    CANCELLABLE_STATUSES,
    RETRYABLE_STATUSES,
    ItemStatus,
)
from conveyor.errors import InvalidStateError
from conveyor.store.models import Item, utcnow
from conveyor.store.queries import get_item


def cancel_item(session: Session, item_id: str) -> Item:
    """Queued items are cancelled at once; running ones when their controller next looks."""
    item = get_item(session, item_id)
    if item.status not in CANCELLABLE_STATUSES:
        raise InvalidStateError(
            f"item {item.id} is {item.status}; only queued, running or retrying items can be "
            "cancelled."
        )
    now = utcnow()
    if item.lease_owner is None:
        item.status = ItemStatus.CANCELLED.value
        item.finished_at = now
        item.error = "cancelled by an operator"
    else:
        item.cancel_requested = True
    item.updated_at = now
    return item


def retry_item(session: Session, item_id: str) -> Item:
    """Queue a failed or cancelled item again; steps that succeeded are not run again."""
    item = get_item(session, item_id)
    if item.status not in RETRYABLE_STATUSES:
        raise InvalidStateError(
            f"item {item.id} is {item.status}; only failed or cancelled items can be retried."
        )
    _requeue(item)
    return item


def retry_failed(session: Session, pipeline: str | None = None) -> int:
    query = select(Item).where(Item.status == ItemStatus.FAILED.value)
    if pipeline:
        query = query.where(Item.pipeline == pipeline)
    items = session.scalars(query).all()
    for item in items:
        _requeue(item)
    return len(items)


def _requeue(item: Item) -> None:
    now = utcnow()
    item.status = ItemStatus.QUEUED.value
    item.error = None
    item.cancel_requested = False
    item.finished_at = None
    item.next_attempt_at = None
    item.lease_owner = None
    item.lease_expires_at = None
    item.queued_at = now  # attempts are counted from here, so the retry budget starts afresh
    item.updated_at = now
