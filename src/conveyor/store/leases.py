"""Leases: how a controller claims items, keeps them and proves it still owns them.

Every claim increments ``lease_generation``; a controller's writes for an item go through only
while owner and generation still match (a fencing token), so a controller that was paused past
its lease cannot overwrite the work of the one that took over.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import BindParameter, CursorResult, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from conveyor.core.lifecycle import FAILED_ATTEMPT_STATUSES, ItemStatus, StepStatus
from conveyor.store.models import CLAIMABLE_STATUSES, Item, StepRun

# Rendered as literals: PostgreSQL uses the partial index ix_items_claimable only when it can
# see that the query's statuses are the index's, which bound parameters hide from a generic plan.
CLAIMABLE_LITERALS: BindParameter[list[str]] = bindparam(
    "claimable", CLAIMABLE_STATUSES, expanding=True, literal_execute=True
)


@dataclass
class ClaimedItem:
    """What a controller needs to drive one item, loaded when it claims it."""

    id: str
    generation: int
    pipeline: str
    pipeline_version: str
    kind: str
    work_dir: str
    stored_name: str | None
    record: Any
    cancel_requested: bool
    taken_over: bool = False  # claimed after another controller's lease on it expired
    input_url: str | None = None  # a file item submitted by reference
    outputs: dict[str, Any] = field(default_factory=dict)
    attempts: Counter[str] = field(default_factory=Counter)  # failures since last queued
    runs: Counter[str] = field(default_factory=Counter)  # every run ever, for numbering


@dataclass(frozen=True)
class LeaseHolder:
    owner: str
    lease_seconds: float

    def expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_seconds)


def claim_next_items(
    session: Session, holder: LeaseHolder, limit: int, now: datetime, take_over: bool = True
) -> list[ClaimedItem]:
    """Claim up to ``limit`` items that are queued, due for a retry, or whose lease expired
    (unless ``take_over`` is False: then only items no controller holds)."""
    if limit <= 0:
        return []
    expired = Item.lease_expires_at < now if take_over else Item.lease_owner.is_(None)
    claimable = (
        select(Item.id, Item.lease_owner)
        .where(
            Item.status.in_(CLAIMABLE_LITERALS),
            or_(Item.lease_expires_at.is_(None), expired),
            or_(Item.next_attempt_at.is_(None), Item.next_attempt_at <= now),
            # Never our own items: a late renewal must not make us run an item twice.
            or_(Item.lease_owner.is_(None), Item.lease_owner != holder.owner),
        )
        .order_by(Item.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # Selected first (locked), so the claim knows whose expired lease it takes over.
    previous_owners: dict[str, str | None] = {
        item_id: owner for item_id, owner in session.execute(claimable)
    }
    if not previous_owners:
        return []
    claimed_rows = session.execute(
        update(Item)
        .where(Item.id.in_(list(previous_owners)))
        .values(
            lease_owner=holder.owner,
            lease_expires_at=holder.expiry(now),
            lease_generation=Item.lease_generation + 1,
            status=ItemStatus.RUNNING.value,
            next_attempt_at=None,
            updated_at=now,
            started_at=func.coalesce(Item.started_at, now),  # the clock starts at the first claim
        )
        .returning(Item.id)
        .execution_options(synchronize_session=False)
    ).all()
    ids = [row[0] for row in claimed_rows]
    if not ids:
        return []
    claimed = _load_claimed(session, ids, now)
    for item in claimed:
        item.taken_over = previous_owners.get(item.id) is not None
    return claimed


def _load_claimed(session: Session, ids: list[str], now: datetime) -> list[ClaimedItem]:
    items = session.scalars(select(Item).where(Item.id.in_(ids)).order_by(Item.created_at)).all()
    by_id = {
        item.id: ClaimedItem(
            id=item.id,
            generation=item.lease_generation,
            pipeline=item.pipeline,
            pipeline_version=item.pipeline_version,
            kind=item.kind,
            work_dir=item.work_dir,
            stored_name=item.stored_name,
            record=item.record,
            input_url=item.input_url,
            cancel_requested=item.cancel_requested,
        )
        for item in items
    }
    queued_at = {item.id: item.queued_at for item in items}
    # Only items claimed before have step runs; first claims skip two queries.
    with_history = [item.id for item in items if item.lease_generation > 1]
    if with_history:
        _load_history(session, by_id, queued_at, with_history, now)
    return [by_id[i] for i in ids if i in by_id]


def _load_history(
    session: Session,
    by_id: dict[str, ClaimedItem],
    queued_at: dict[str, datetime],
    ids: list[str],
    now: datetime,
) -> None:
    # Runs left "running" by an earlier owner will never report back: mark them lost.
    session.execute(
        update(StepRun)
        .where(StepRun.item_id.in_(ids), StepRun.status == StepStatus.RUNNING.value)
        .values(
            status=StepStatus.LOST.value,
            finished_at=now,
            error="the controller running this step stopped before it reported; step re-run",
        )
        .execution_options(synchronize_session=False)
    )
    runs = session.execute(
        select(
            StepRun.item_id, StepRun.step, StepRun.status, StepRun.output, StepRun.submitted_at
        ).where(StepRun.item_id.in_(ids))
    ).all()
    for item_id, step_name, status, output, submitted_at in runs:
        claimed = by_id[item_id]
        claimed.runs[step_name] += 1
        if status == StepStatus.SUCCEEDED.value:
            claimed.outputs[step_name] = output
        elif status in FAILED_ATTEMPT_STATUSES and submitted_at >= queued_at[item_id]:
            claimed.attempts[step_name] += 1


def renew_leases(
    session: Session, holder: LeaseHolder, held: dict[str, int], now: datetime
) -> tuple[set[str], set[str]]:
    """Extend the leases still owned; returns (still held ids, ids whose cancel was asked)."""
    if not held:
        return set(), set()
    session.execute(
        update(Item)
        .where(Item.id.in_(list(held)), Item.lease_owner == holder.owner)
        .values(lease_expires_at=holder.expiry(now))
        .execution_options(synchronize_session=False)
    )
    return owned_items(session, holder, held)


def owned_items(
    session: Session, holder: LeaseHolder, held: dict[str, int]
) -> tuple[set[str], set[str]]:
    """Of ``held`` (id -> generation), those this holder still owns, and those to cancel."""
    rows = session.execute(
        select(Item.id, Item.lease_generation, Item.cancel_requested)
        .where(Item.id.in_(list(held)), Item.lease_owner == holder.owner)
        .with_for_update()
    ).all()
    owned = {item_id for item_id, generation, _ in rows if held.get(item_id) == generation}
    cancelled = {item_id for item_id, _, cancel in rows if cancel and item_id in owned}
    return owned, cancelled


def release_all(session: Session, holder: LeaseHolder) -> int:
    """On a clean shutdown, hand every held item back so another controller can resume it."""
    result = session.execute(
        update(Item)
        .where(
            Item.lease_owner == holder.owner,
            Item.status.in_(CLAIMABLE_STATUSES),
        )
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(StepRun)
        .where(
            StepRun.status == StepStatus.RUNNING.value,
            StepRun.item_id.in_(
                select(Item.id).where(
                    and_(Item.lease_owner.is_(None), Item.status.in_(CLAIMABLE_STATUSES))
                )
            ),
        )
        .values(status=StepStatus.CANCELLED.value, error="controller shut down; step will re-run")
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount or 0  # an UPDATE's result has a rowcount
