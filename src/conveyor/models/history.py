"""Conveyor's own records of model operations in the state store: which training items were
registered as which version (claimed so two processes never register one item twice), and
every alias change with who/what made it, when and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Update, and_, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from conveyor.models.promotion import AliasChange
from conveyor.store.models import Item, ModelAliasChange, ModelRun, utcnow
from conveyor.streams.event_sinks import NEW_VERSION, write_model_event

REGISTERING, RETRY, REGISTERED, FAILED = "registering", "retry", "registered", "failed"
MAX_REGISTRATION_ATTEMPTS = 3


def updated_rows(session: Session, statement: Update) -> int:
    """How many rows a conditional UPDATE changed: 1 means this process won the claim."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount


def unregistered_items(
    session: Session, pipelines: Sequence[str], stale_before: datetime, limit: int = 20
) -> list[str]:
    """Succeeded training items that no live claim covers, oldest first."""
    settled = exists().where(
        ModelRun.item_id == Item.id,
        or_(
            ModelRun.state.in_((REGISTERED, FAILED)),
            and_(ModelRun.state == REGISTERING, ModelRun.claimed_at >= stale_before),
        ),
    )
    query = (
        select(Item.id)
        .where(Item.pipeline.in_(list(pipelines)), Item.status == "succeeded", ~settled)
        .order_by(Item.finished_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def claim_registration(
    sessions: sessionmaker[Session],
    item_id: str,
    model: str,
    owner: str,
    stale_before: datetime,
) -> bool:
    """Take the right to register ``item_id``; False when another process holds it."""
    now = utcnow()
    try:
        with sessions.begin() as session:
            claimed = updated_rows(
                session,
                update(ModelRun)
                .where(
                    ModelRun.item_id == item_id,
                    or_(
                        ModelRun.state == RETRY,
                        and_(ModelRun.state == REGISTERING, ModelRun.claimed_at < stale_before),
                    ),
                )
                .values(state=REGISTERING, claimed_by=owner, claimed_at=now),
            )
            if claimed:
                return True
            if session.get(ModelRun, item_id) is not None:
                return False
            session.add(
                ModelRun(
                    item_id=item_id,
                    model=model,
                    state=REGISTERING,
                    claimed_by=owner,
                    claimed_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def finish_registration(
    session: Session,
    item_id: str,
    owner: str,
    version: int,
    run_id: str,
    changes: Sequence[tuple[AliasChange, str]],
    actor: str,
) -> bool:
    """Mark the item registered and record its alias changes, in the caller's transaction.

    Returns False (and writes nothing) if this process no longer holds the claim."""
    done = updated_rows(
        session,
        update(ModelRun)
        .where(ModelRun.item_id == item_id, ModelRun.claimed_by == owner)
        .where(ModelRun.state == REGISTERING)
        .values(state=REGISTERED, version=version, mlflow_run_id=run_id, registered_at=utcnow()),
    )
    if not done:
        return False
    model = session.get(ModelRun, item_id).model  # type: ignore[union-attr]
    new_version = {"event": NEW_VERSION, "version": version, "run_id": run_id, "item_id": item_id}
    write_model_event(session, model, new_version)
    for change, reason in changes:
        record_change(session, model, change, actor, reason, item_id)
    return True


def fail_registration(sessions: sessionmaker[Session], item_id: str, owner: str, error: str) -> str:
    """Count a failed attempt; after ``MAX_REGISTRATION_ATTEMPTS`` the item stays failed."""
    with sessions.begin() as session:
        run = session.get(ModelRun, item_id)
        if run is None or run.claimed_by != owner:
            return "lost"
        run.attempts += 1
        run.error = error[:4000]
        run.state = FAILED if run.attempts >= MAX_REGISTRATION_ATTEMPTS else RETRY
        return run.state


def registration_of(session: Session, item_id: str) -> ModelRun | None:
    return session.get(ModelRun, item_id)


def record_change(
    session: Session,
    model: str,
    change: AliasChange,
    actor: str,
    reason: str,
    item_id: str | None = None,
) -> ModelAliasChange:
    row = ModelAliasChange(
        model=model,
        alias=change.alias,
        from_version=change.from_version,
        to_version=change.to_version,
        action=change.action,
        actor=actor,
        reason=reason,
        item_id=item_id,
        created_at=utcnow(),
    )
    session.add(row)
    event = {
        "event": change.action,
        "alias": change.alias,
        "from_version": change.from_version,
        "to_version": change.to_version,
        "actor": actor,
        "reason": reason,
        "item_id": item_id,
    }
    write_model_event(session, model, event)  # for the model-event sinks, in this transaction
    return row


def alias_history(session: Session, model: str) -> list[ModelAliasChange]:
    query = select(ModelAliasChange).where(ModelAliasChange.model == model)
    return list(session.scalars(query.order_by(ModelAliasChange.id)))


def as_changes(rows: Sequence[ModelAliasChange]) -> list[AliasChange]:
    return [AliasChange(r.alias, r.from_version, r.to_version, r.action) for r in rows]


def stale_cutoff(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)
