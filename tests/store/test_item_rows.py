"""Bulk item rows (store/item_rows.py): what they insert reads back as the ORM would have
written it, on both databases; duplicates are found across lookup chunks."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.store import actions
from conveyor.store.item_rows import SQLITE_LOOKUP_CHUNK, new_item_ids
from conveyor.store.models import Item
from conveyor.store.submissions import (
    NewItem,
    find_duplicates,
    insert_item_rows,
    record_content_hash,
    record_hash_and_json,
)

AWKWARD = {
    "zebra": 'tab\there, newline\nthere, back\\slash, quote " and \r',
    "alpha": ["é", "日本", "🙂", None, True, 1.5, -0.0, 1e-07, 12345678901234567],
    "nested": {"b": {}, "a": []},
}


def _record_item(record: object, work_dir: str = "work/x") -> NewItem:
    content_hash, stored = record_hash_and_json(record)
    return NewItem(
        "noop", "1", "record", content_hash, work_dir, "cli", record=record, record_json=stored
    )


def test_the_content_hash_is_the_one_earlier_items_were_stored_with() -> None:
    for record in (AWKWARD, {"n": 1, "amount": 12.5}, [1, "two", {"3": 4.0}], "text", 7):
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        expected = hashlib.sha256(canonical.encode()).hexdigest()
        assert record_content_hash(record) == expected
        assert record_hash_and_json(record)[0] == expected


def test_rows_read_back_as_the_orm_writes_them(sessions: sessionmaker[Session]) -> None:
    big = {"big": 2**70, "order": "kept", "a": 1}  # beyond orjson's 64-bit integers
    file_item = NewItem(
        *("noop", "1", "file", "f" * 64, "work/y", "api", "in\tput.csv", "s.csv", 42),
        input_url="s3://bucket/in\\put.csv",
    )
    with sessions.begin() as session:
        ids = insert_item_rows(session, [_record_item(AWKWARD), _record_item(big), file_item])
    with sessions() as session:
        items = {item.id: item for item in session.scalars(select(Item))}
    awkward, large, stored_file = (items[item_id] for item_id in ids)
    assert awkward.record == AWKWARD
    assert list(large.record) == ["big", "order", "a"] and large.record["big"] == 2**70
    assert stored_file.record is None and stored_file.input_name == "in\tput.csv"
    assert stored_file.input_size == 42 and stored_file.input_url == "s3://bucket/in\\put.csv"
    for item in items.values():
        assert item.status == "queued" and item.cancel_requested is False
        assert item.lease_generation == 0 and item.created_at == item.queued_at


def test_nan_is_kept_where_the_database_takes_it(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        if session.connection().dialect.name == "postgresql":
            pytest.skip("PostgreSQL's json type refuses NaN, with or without bulk rows")
    record = {"x": float("nan"), "y": float("inf")}
    with sessions.begin() as session:
        (item_id,) = insert_item_rows(session, [_record_item(record)])
    with sessions() as session:
        stored = session.get(Item, item_id)
        assert stored is not None and stored.record["y"] == float("inf")
        assert stored.record["x"] != stored.record["x"]  # NaN, not null


def test_ids_are_unique_and_a_short_prefix_tells_a_batch_apart() -> None:
    """People list ids by their first 12 digits and pick one by a prefix of 6 or more."""
    ids = new_item_ids(5000)
    assert len(set(ids)) == 5000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len({i[:12] for i in ids}) == 5000
    assert len({i[:6] for i in ids}) > 4900  # 24 random bits: a few collide, as with uuid4


def test_duplicates_are_found_across_lookup_chunks(sessions: sessionmaker[Session]) -> None:
    count = 2 * SQLITE_LOOKUP_CHUNK + 7
    news = [_record_item({"n": n}) for n in range(count)]
    with sessions.begin() as session:
        earliest = insert_item_rows(session, news)
    with sessions.begin() as session:
        insert_item_rows(session, news[:3])  # later copies (force): the earliest one counts
    hashes = [new.content_hash for new in news] + [_record_item({"n": -1}).content_hash]
    with sessions() as session:
        found = find_duplicates(session, "noop", "1", hashes)
        assert found == {new.content_hash: earliest[n] for n, new in enumerate(news)}
        assert find_duplicates(session, "noop", "2", hashes) == {}
    with sessions.begin() as session:
        actions.cancel_item(session, earliest[5])
    with sessions() as session:
        assert news[5].content_hash not in find_duplicates(session, "noop", "1", hashes)
