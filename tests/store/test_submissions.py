"""Recording items: the same content is a duplicate unless the earlier item ended without a
result."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from conveyor.store import actions
from conveyor.store.submissions import NewItem, find_duplicate, insert_items, record_content_hash


def _new(record: dict[str, int]) -> NewItem:
    return NewItem("noop", "1", "record", record_content_hash(record), "work/x", record=record)


def test_a_duplicate_is_found_until_the_earlier_item_is_cancelled(
    sessions: sessionmaker[Session],
) -> None:
    assert record_content_hash({"a": 1, "b": 2}) == record_content_hash({"b": 2, "a": 1})
    with sessions.begin() as session:
        (earlier,) = insert_items(session, [_new({"n": 1})])
        earlier_id = earlier.id
    with sessions() as session:
        found = find_duplicate(session, _new({"n": 1}))
        assert found is not None and found.id == earlier_id
        assert find_duplicate(session, _new({"n": 2})) is None
    with sessions.begin() as session:
        actions.cancel_item(session, earlier_id)
    with sessions() as session:
        assert find_duplicate(session, _new({"n": 1})) is None
