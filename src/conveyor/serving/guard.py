"""Automatic rollback of a canary: with ``auto_rollback`` in an endpoint's routing, an arm that
does not target ``champion`` and breaches the serving alert thresholds over its recent
requests (server errors above 5 %, or p99 latency above 400 ms, over at least
``MIN_REQUESTS``) gets weight 0 in the routing, recorded as a routing revision by
``auto-rollback`` and a ``serving-canary-rolled-back`` model event. Each replica judges the
requests it answered; the routing change reaches every replica."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from conveyor.serving.endpoints import read_endpoint, save_routing
from conveyor.serving.routing import CHAMPION, RoutingConfig
from conveyor.store.models import ModelEvent
from conveyor.streams.event_sinks import CANARY_ROLLBACK, write_model_event

WINDOW = 500  # most recent requests per arm
MIN_REQUESTS = 50
MAX_ERROR_RATE = 0.05  # as ConveyorServingErrorRateHigh
MAX_P99_SECONDS = 0.4  # as ConveyorServingLatencyP99High
ROLLED_BACK_EVENT = "serving-canary-rolled-back"
ACTOR = "auto-rollback"

Outcomes = deque[tuple[float, bool]]  # (seconds, server error)


def new_window() -> Outcomes:
    return deque(maxlen=WINDOW)


def breach(outcomes: Outcomes) -> str | None:
    """Why these recent outcomes breach the thresholds, or None."""
    recent = list(outcomes)
    if len(recent) < MIN_REQUESTS:
        return None
    errors = sum(failed for _, failed in recent) / len(recent)
    if errors > MAX_ERROR_RATE:
        return f"{errors:.0%} server errors over its last {len(recent)} requests"
    p99 = float(np.percentile([seconds for seconds, _ in recent], 99))
    if p99 > MAX_P99_SECONDS:
        return f"p99 latency {p99 * 1000:.0f} ms over its last {len(recent)} requests"
    return None


def guarded_arms(config: RoutingConfig) -> list[str]:
    """The arms auto-rollback may switch off: canaries, never the champion."""
    if not config.auto_rollback:
        return []
    return [a.name for a in config.arms if a.target != CHAMPION and a.weight > 0]


def roll_back_arm(
    sessions: sessionmaker[Session], endpoint: str, arm: str, reason: str, version: Any
) -> bool:
    """Set the arm's weight to 0 (if the routing still gives it traffic); True if changed."""
    with sessions.begin() as session:
        current = read_endpoint(session, endpoint).config
        if arm not in guarded_arms(current):
            return False
        arms = tuple(replace(a, weight=0.0) if a.name == arm else a for a in current.arms)
        if sum(a.weight for a in arms) <= 0:
            return False  # it is the only arm with traffic: nothing to fall back to
        save_routing(session, endpoint, replace(current, arms=arms), ACTOR)
        session.add(
            ModelEvent(
                model=current.model,
                type=ROLLED_BACK_EVENT,
                payload={"endpoint": endpoint, "arm": arm, "version": version, "reason": reason},
                source=ACTOR,
            )
        )
        event = {"event": CANARY_ROLLBACK, "endpoint": endpoint, "arm": arm, "version": version}
        write_model_event(session, current.model, {**event, "actor": ACTOR, "reason": reason})
    return True
