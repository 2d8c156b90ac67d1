"""The audit trail of deliveries: one ``model_events`` row per step, type ``delivery``.

Model events are already where model operations leave a record (reload failures, canary
rollbacks); a delivery step is written as handled, so no trigger ever starts a run from it.
The payload carries the delivery's id, the commit, the step, its outcome and the details. In
the same transaction each step goes to the model's model-event sinks (``event: delivery``), so
a broker sees the gate, the canary and its promotion or rollback as they happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.store.models import ModelEvent, utcnow
from conveyor.streams.event_sinks import write_model_event

DELIVERY_EVENT = "delivery"
SOURCE = "conveyor models deliver"


@dataclass(frozen=True)
class DeliveryStep:
    at: datetime
    model: str
    delivery_id: str
    commit: str
    step: str
    outcome: str
    detail: str
    version: int | None
    item_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "at": self.at.isoformat()}


class AuditTrail:
    """Writes the steps of one delivery (``delivery_id``) of ``commit`` for ``model``."""

    def __init__(
        self, sessions: sessionmaker[Session], model: str, delivery_id: str, commit: str
    ) -> None:
        self.sessions = sessions
        self.model, self.delivery_id, self.commit = model, delivery_id, commit

    def record(
        self,
        step: str,
        outcome: str,
        detail: str = "",
        version: int | None = None,
        item_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        payload = {
            "delivery_id": self.delivery_id,
            "commit": self.commit,
            "step": step,
            "outcome": outcome,
            "detail": detail,
            "version": version,
            **(extra or {}),
        }
        now = utcnow()
        with self.sessions.begin() as session:
            session.add(
                ModelEvent(
                    model=self.model,
                    type=DELIVERY_EVENT,
                    payload=payload,
                    source=SOURCE,
                    received_at=now,
                    handled_at=now,
                    item_id=item_id,
                )
            )
            event = {"event": DELIVERY_EVENT, **payload, "item_id": item_id}
            write_model_event(session, self.model, event)


def delivery_steps(
    session: Session, model: str | None = None, commit: str | None = None, limit: int = 500
) -> list[DeliveryStep]:
    """Recorded steps, oldest first; ``commit`` may be a prefix of the sha."""
    query = select(ModelEvent).where(ModelEvent.type == DELIVERY_EVENT)
    if model is not None:
        query = query.where(ModelEvent.model == model)
    rows = session.scalars(query.order_by(ModelEvent.id.desc()).limit(limit))
    steps = [_step(row) for row in rows]
    if commit:
        steps = [s for s in steps if s.commit.startswith(commit.lower())]
    return list(reversed(steps))


def _step(row: ModelEvent) -> DeliveryStep:
    payload = row.payload if isinstance(row.payload, Mapping) else {}
    return DeliveryStep(
        at=row.received_at,
        model=row.model,
        delivery_id=str(payload.get("delivery_id", "")),
        commit=str(payload.get("commit", "")),
        step=str(payload.get("step", "")),
        outcome=str(payload.get("outcome", "")),
        detail=str(payload.get("detail", "")),
        version=payload.get("version"),
        item_id=row.item_id,
    )
