"""Training started by time or by data: cron schedules, "N new labelled rows" and published
events.

Both keep their state in the ``training_triggers`` table and fire by a conditional UPDATE of
that state in the same transaction that inserts the training item, so a fire happens exactly
once per period (or per batch of rows) however many processes run ``conveyor up`` and however
often they restart.

Schedules are cron expressions in UTC (``[models.heart] schedule = "0 3 * * *"``). The first
time a schedule is seen, its latest past slot is recorded without firing; after that, a slot
that passed while nothing ran fires once when a process comes back (missed slots are not
replayed one by one). A data trigger fires when at least ``retrain_after_rows`` rows arrived
since its last fire, or when the oldest of them waited ``retrain_after_minutes``; the fire marks
the waiting rows as its own (``labelled_rows.fire``) in the transaction that inserts the run,
which trains on the model's dataset plus every row with ``fire`` up to its own.
An event trigger starts one run per published event whose type the model lists in
``retrain_on_events``; the event row itself is the claim (``handled_at`` set once).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from conveyor.errors import ConfigurationError, InputRejectedError
from conveyor.models.history import updated_rows
from conveyor.models.schema import check_rows
from conveyor.models.submission import build_training_item, training_pipeline
from conveyor.pipeline.registry import PipelineRegistry
from conveyor.settings import Settings
from conveyor.storage.files import Storage
from conveyor.store.models import LabelledRow, ModelEvent, TrainingTrigger, utcnow
from conveyor.store.submissions import insert_items

logger = logging.getLogger(__name__)
SCHEDULE_ACTOR, ROWS_ACTOR = "schedule", "new rows"
EVENT_BATCH = 100


@dataclass(frozen=True)
class RowRule:
    """When a data trigger fires: ``after_rows`` rows waiting, or the oldest waiting row
    ``after_minutes`` old (whichever comes first); at least one row must wait."""

    after_rows: int | None = None
    after_minutes: float | None = None

    @property
    def configured(self) -> bool:
        return bool(self.after_rows or self.after_minutes)

    def due(self, waiting: int, oldest: datetime | None, now: datetime) -> bool:
        if waiting <= 0:
            return False
        if self.after_rows and waiting >= self.after_rows:
            return True
        if self.after_minutes and oldest is not None:
            return now - oldest >= timedelta(minutes=self.after_minutes)
        return False


@dataclass(frozen=True)
class RowsUsed:
    """The labelled rows a data-triggered run trained on: every row of the model with
    ``fire <= fire`` (``new`` of them first used by this run), in id order."""

    fire: int
    new: int
    total: int
    last_row_id: int

    def to_record(self) -> dict[str, int]:
        return {"fire": self.fire, "new": self.new, "total": self.total}


def latest_slot(expression: str, now: datetime) -> datetime:
    """The latest time at or before ``now`` that the cron expression names."""
    from croniter import croniter

    if not croniter.is_valid(expression):
        raise ConfigurationError(
            f"schedule {expression!r} is not a cron expression; use five fields, e.g. "
            "'0 3 * * *' for 03:00 UTC every day."
        )
    after_now = now.replace(microsecond=0) + timedelta(seconds=1)
    return croniter(expression, after_now).get_prev(datetime)


class Triggers:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        storage: Storage,
        registry: PipelineRegistry,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.storage = storage
        self.registry = registry

    # -- schedules ------------------------------------------------------------------------------

    def fire_schedules(self, now: datetime | None = None) -> list[str]:
        """Start a run for every schedule whose latest slot has not fired yet; item ids."""
        now = now or utcnow()
        fired = []
        for model, configured in self.settings.models.items():
            if configured.schedule:
                item_id = self._fire_schedule(model, latest_slot(configured.schedule, now))
                if item_id:
                    fired.append(item_id)
        return fired

    def _fire_schedule(self, model: str, slot: datetime) -> str | None:
        name = f"{model}:schedule"
        with self.sessions() as session:
            state = session.get(TrainingTrigger, name)
        if state is None:
            self._create_state(name, model, last_fired_at=slot)
            return None
        if state.last_fired_at is not None and state.last_fired_at >= slot:
            return None
        new = build_training_item(
            self.settings, self.registry, self.storage, model, None, "schedule", SCHEDULE_ACTOR
        )
        with self.sessions.begin() as session:
            claimed = updated_rows(
                session,
                update(TrainingTrigger)
                .where(
                    TrainingTrigger.name == name,
                    or_(
                        TrainingTrigger.last_fired_at.is_(None),
                        TrainingTrigger.last_fired_at < slot,
                    ),
                )
                .values(last_fired_at=slot, updated_at=utcnow()),
            )
            if not claimed:
                return None  # another process fired this slot
            [item] = insert_items(session, [new])
            session.execute(
                update(TrainingTrigger)
                .where(TrainingTrigger.name == name)
                .values(last_item_id=item.id)
            )
        logger.info("schedule of %s fired for %s: training item %s", model, slot, item.id)
        return item.id

    def _create_state(self, name: str, model: str, last_fired_at: datetime | None) -> None:
        try:
            with self.sessions.begin() as session:
                session.add(
                    TrainingTrigger(
                        name=name,
                        model=model,
                        last_fired_at=last_fired_at,
                        last_row_id=0,
                        updated_at=utcnow(),
                    )
                )
        except IntegrityError:
            pass  # another process created it first

    # -- new labelled rows ----------------------------------------------------------------------

    def add_rows(self, model: str, data: bytes, source: str) -> int:
        """Check CSV rows against the model's schema and keep them for its next training."""
        pipeline = training_pipeline(self.registry, model)
        if pipeline.schema is None:
            raise InputRejectedError(f"model {model!r} does not take new rows (no schema).")
        rows = check_rows(pipeline.schema, data, source)
        with self.sessions.begin() as session:
            session.add_all(
                LabelledRow(model=model, values=row, source=source[:200], received_at=utcnow())
                for row in rows
            )
        return len(rows)

    def fire_row_triggers(self, now: datetime | None = None) -> list[str]:
        fired = []
        for model, configured in self.settings.models.items():
            rule = RowRule(configured.retrain_after_rows, configured.retrain_after_minutes)
            if rule.configured:
                item_id = self._fire_rows(model, rule, now or utcnow())
                if item_id:
                    fired.append(item_id)
        return fired

    def _fire_rows(self, model: str, rule: RowRule, now: datetime) -> str | None:
        name = f"{model}:rows"
        with self.sessions() as session:
            waiting, oldest = session.execute(
                select(func.count(), func.min(LabelledRow.received_at)).where(
                    LabelledRow.model == model, LabelledRow.fire.is_(None)
                )
            ).one()
            state = session.get(TrainingTrigger, name)
        if not rule.due(waiting, oldest, now):
            return None
        if state is None:
            self._create_state(name, model, last_fired_at=None)
        fires = state.fires if state else 0
        with self.sessions.begin() as session:
            claimed = updated_rows(
                session,
                update(TrainingTrigger)
                .where(TrainingTrigger.name == name, TrainingTrigger.fires == fires)
                .values(fires=fires + 1, last_fired_at=utcnow(), updated_at=utcnow()),
            )
            if not claimed:
                return None  # another process fired first
            item_id, used = self._claim_rows_and_insert(session, model, fires + 1)
            session.execute(
                update(TrainingTrigger)
                .where(TrainingTrigger.name == name)
                .values(last_item_id=item_id, last_row_id=used.last_row_id)
            )
        logger.info("%d new rows of %s: training item %s", used.new, model, item_id)
        return item_id

    def _claim_rows_and_insert(
        self, session: Session, model: str, fire: int
    ) -> tuple[str, RowsUsed]:
        """Mark every committed waiting row as used by ``fire`` and insert the run that trains
        on all rows used so far. Rows committed later (a slower transaction with a smaller id)
        stay waiting for the next fire, so a run's rows are exactly those with fire <= K."""
        new = updated_rows(
            session,
            update(LabelledRow)
            .where(LabelledRow.model == model, LabelledRow.fire.is_(None))
            .values(fire=fire),
        )
        ids, rows = self._rows_through(session, model, fire)
        used = RowsUsed(fire=fire, new=new, total=len(rows), last_row_id=max(ids, default=0))
        item = build_training_item(
            self.settings,
            self.registry,
            self.storage,
            model,
            None,
            "new-rows",
            ROWS_ACTOR,
            extra_rows=rows,
            new_rows=used.to_record(),
        )
        [inserted] = insert_items(session, [item])
        return inserted.id, used

    @staticmethod
    def _rows_through(session: Session, model: str, fire: int) -> tuple[list[int], list[list[str]]]:
        query = (
            select(LabelledRow.id, LabelledRow.values)
            .where(LabelledRow.model == model, LabelledRow.fire <= fire)
            .order_by(LabelledRow.id)
        )
        found = session.execute(query).all()
        return [row_id for row_id, _ in found], [list(values) for _, values in found]

    def pending_rows(self, model: str) -> tuple[int, int]:
        """(rows waiting since the last fire, rows kept in total) for ``model``."""
        with self.sessions() as session:
            counted = select(func.count()).select_from(LabelledRow)
            total = session.scalar(counted.where(LabelledRow.model == model))
            waiting = session.scalar(
                counted.where(LabelledRow.model == model, LabelledRow.fire.is_(None))
            )
        return int(waiting or 0), int(total or 0)

    # -- published events -----------------------------------------------------------------------

    def publish_event(self, model: str, type: str, payload: Any, source: str) -> int:
        """Keep an event for ``model``; its id. Runs start in :meth:`fire_event_triggers`."""
        training_pipeline(self.registry, model)  # an unknown model fails here, with its name
        event = ModelEvent(
            model=model, type=type, payload=payload, source=source[:200], received_at=utcnow()
        )
        with self.sessions.begin() as session:
            session.add(event)
            session.flush()
            return event.id

    def fire_event_triggers(self, model: str | None = None) -> list[str]:
        """One training run per waiting event of a type its model starts runs on; item ids."""
        fired = []
        for name, configured in self.settings.models.items():
            if configured.retrain_on_events and model in (None, name):
                for event_id, type in self._waiting_events(name, configured.retrain_on_events):
                    item_id = self._fire_event(name, event_id, type)
                    if item_id:
                        fired.append(item_id)
        return fired

    def _waiting_events(self, model: str, types: Sequence[str]) -> list[tuple[int, str]]:
        with self.sessions() as session:
            query = (
                select(ModelEvent.id, ModelEvent.type)
                .where(
                    ModelEvent.model == model,
                    ModelEvent.handled_at.is_(None),
                    ModelEvent.type.in_(list(types)),
                )
                .order_by(ModelEvent.id)
                .limit(EVENT_BATCH)
            )
            return [(event_id, type) for event_id, type in session.execute(query)]

    def _fire_event(self, model: str, event_id: int, type: str) -> str | None:
        new = build_training_item(
            self.settings, self.registry, self.storage, model, None, "event", f"event:{type}"
        )
        with self.sessions.begin() as session:
            claimed = updated_rows(
                session,
                update(ModelEvent)
                .where(ModelEvent.id == event_id, ModelEvent.handled_at.is_(None))
                .values(handled_at=utcnow()),
            )
            if not claimed:
                return None  # another process started the run for this event
            [item] = insert_items(session, [new])
            session.execute(
                update(ModelEvent).where(ModelEvent.id == event_id).values(item_id=item.id)
            )
        logger.info("event %d (%s) of %s: training item %s", event_id, type, model, item.id)
        return item.id

    def event(self, event_id: int) -> ModelEvent | None:
        with self.sessions() as session:
            return session.get(ModelEvent, event_id)
