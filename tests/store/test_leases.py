"""Claims: concurrent controllers never claim the same item (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from conveyor.store.database import connect, migrate, session_factory
from conveyor.store.leases import LeaseHolder, claim_next_items
from conveyor.store.models import Item, utcnow
from conveyor.store.submissions import NewItem, insert_items

CLAIMERS = 6
PER_CLAIM = 4
ROUNDS = 5
ITEMS = CLAIMERS * PER_CLAIM * ROUNDS


def _queue(sessions, count: int) -> None:  # type: ignore[no-untyped-def]
    news = [
        NewItem("noop", "1", "record", f"{n:064x}", f"work/{n}", record={"n": n})
        for n in range(count)
    ]
    with sessions.begin() as session:
        insert_items(session, news)


def _claim_in_rounds(database_url: str, owner: str, start: threading.Barrier, out: list) -> None:  # type: ignore[type-arg]
    """One claimer with its own engine (its own connections), as a separate controller has."""
    engine = connect(database_url)
    sessions = session_factory(engine)
    holder = LeaseHolder(owner, lease_seconds=300)
    try:
        for _ in range(ROUNDS):
            start.wait(timeout=60)  # every claimer selects at the same moment
            with sessions.begin() as session:
                claimed = claim_next_items(session, holder, PER_CLAIM, utcnow())
            out.extend((owner, claim.id) for claim in claimed)
    finally:
        engine.dispose()


def test_concurrent_claimers_never_claim_the_same_item(database_url: str) -> None:
    engine = connect(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    _queue(sessions, ITEMS)
    start = threading.Barrier(CLAIMERS)
    claims: list[tuple[str, str]] = []
    threads = [
        threading.Thread(target=_claim_in_rounds, args=(database_url, f"c{n}", start, claims))
        for n in range(CLAIMERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with sessions() as session:
        rows = session.execute(select(Item.id, Item.lease_owner, Item.lease_generation)).all()
    engine.dispose()

    times_claimed = Counter(item_id for _, item_id in claims)
    assert max(times_claimed.values()) == 1, f"items claimed twice: {times_claimed.most_common(3)}"
    assert len(times_claimed) == ITEMS, "some items were never claimed"
    owner_of = dict(((item_id, owner) for owner, item_id in claims))
    assert {item_id: owner for item_id, owner, _ in rows} == owner_of
    assert {generation for _, _, generation in rows} == {1}
    assert len({owner for owner, _ in claims}) > 1, "the claims did not overlap"


def test_after_a_store_outage_expired_leases_are_not_taken_over(sessions) -> None:  # type: ignore[no-untyped-def]
    """take_over=False (a controller's first lease period after a store outage) claims queued
    items only; an item whose lease expired stays with its owner, who renews it first."""
    _queue(sessions, 2)
    now = utcnow()
    with sessions.begin() as session:
        [held] = claim_next_items(session, LeaseHolder("a", lease_seconds=1), 1, now)
    later = now + timedelta(seconds=5)  # a's lease expired meanwhile
    other = LeaseHolder("b", lease_seconds=30)
    with sessions.begin() as session:
        claimed = claim_next_items(session, other, 10, later, take_over=False)
    assert [c.id for c in claimed] != [] and held.id not in {c.id for c in claimed}
    with sessions.begin() as session:
        [taken] = claim_next_items(session, other, 10, later)
    assert taken.id == held.id and taken.taken_over
