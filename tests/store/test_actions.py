"""What operators do to items, on the store alone: cancel and retry follow the lifecycle."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from conveyor.errors import InvalidStateError
from conveyor.store import actions
from conveyor.store.leases import LeaseHolder, claim_next_items
from conveyor.store.models import Item, utcnow
from conveyor.store.submissions import NewItem, insert_items


def _items(sessions: sessionmaker[Session], count: int) -> list[str]:
    news = [NewItem("noop", "1", "record", f"{n:064x}", f"work/{n}") for n in range(count)]
    with sessions.begin() as session:
        return [item.id for item in insert_items(session, news)]


def _status(sessions: sessionmaker[Session], item_id: str) -> tuple[str, bool]:
    with sessions() as session:
        item = session.get(Item, item_id)
        assert item is not None
        return item.status, item.cancel_requested


def test_cancel_ends_a_queued_item_and_asks_the_owner_of_a_running_one(
    sessions: sessionmaker[Session],
) -> None:
    ids = _items(sessions, 2)
    with sessions.begin() as session:
        (claimed,) = claim_next_items(session, LeaseHolder("owner", 300), 1, utcnow())
    running = claimed.id
    (queued,) = set(ids) - {running}
    with sessions.begin() as session:
        actions.cancel_item(session, queued)
        actions.cancel_item(session, running)
    assert _status(sessions, queued) == ("cancelled", False)
    assert _status(sessions, running) == ("running", True)


def test_only_ended_items_are_retried_and_only_active_ones_cancelled(
    sessions: sessionmaker[Session],
) -> None:
    (item_id,) = _items(sessions, 1)
    with sessions.begin() as session, pytest.raises(InvalidStateError, match="only failed"):
        actions.retry_item(session, item_id)
    with sessions.begin() as session:
        actions.cancel_item(session, item_id)
    with sessions.begin() as session, pytest.raises(InvalidStateError, match="only queued"):
        actions.cancel_item(session, item_id)
    with sessions.begin() as session:
        actions.retry_item(session, item_id)
    assert _status(sessions, item_id) == ("queued", False)
