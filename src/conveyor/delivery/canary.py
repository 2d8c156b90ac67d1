"""The canary on a serving endpoint: a routing revision that sends a share of traffic to the
delivered version (pinned by number), an experiment that measures both arms, and the way back.

Replicas pick up each routing revision and alias move by hot reload (docs/serving.md), so
starting, ending or promoting a canary never interrupts requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from conveyor.delivery.rules import ArmCounts
from conveyor.errors import InvalidStateError
from conveyor.serving import endpoints, experiments
from conveyor.serving.quality import quality_by
from conveyor.serving.routing import CHAMPION, Arm, RoutingConfig
from conveyor.store.models import utcnow

CANARY_ARM = "canary"


@dataclass(frozen=True)
class Canary:
    endpoint: str
    version: int
    previous: RoutingConfig  # restored when the canary ends
    experiment_id: int
    started_at: datetime


def start_canary(
    sessions: sessionmaker[Session],
    endpoint: str,
    model: str,
    version: int,
    weight: float,
    metric: str,
    actor: str,
) -> Canary:
    """Send ``weight`` percent of ``endpoint``'s traffic to ``version`` and start measuring."""
    with sessions.begin() as session:
        current = endpoints.read_endpoint(session, endpoint).config
        _check_free(current, endpoint, model)
        rules = tuple(r for r in current.rules if r.arm == CHAMPION)
        arms = (Arm(CHAMPION, CHAMPION, 100.0 - weight), Arm(CANARY_ARM, version, weight))
        # auto_rollback: the serving guard switches a failing or slow canary off at once
        config = RoutingConfig(
            model, arms, rules, current.key_field, current.salt, current.capture_features, True
        )
        endpoints.save_routing(session, endpoint, config, actor)
        started = utcnow()
        experiment = experiments.create_experiment(
            session, endpoint, f"canary {model} v{version}", metric, started, None, actor
        )
        return Canary(endpoint, version, current, experiment.id, started)


def _check_free(config: RoutingConfig, endpoint: str, model: str) -> None:
    if config.model != model:
        raise InvalidStateError(
            f"endpoint {endpoint!r} serves model {config.model!r}, not {model!r}; name the "
            "model's endpoint in canary.endpoint."
        )
    busy = [a.name for a in config.arms if a.target != CHAMPION and a.weight > 0]
    if busy:
        raise InvalidStateError(
            f"endpoint {endpoint!r} already sends traffic to arm(s) {', '.join(busy)}; end that "
            "experiment or canary (PUT .../routing) before delivering another version."
        )


def arm_counts(
    sessions: sessionmaker[Session], canary: Canary, metric: str
) -> tuple[ArmCounts, ArmCounts]:
    """(champion, canary) outcomes of the online metric since the canary started."""
    with sessions() as session:
        by_arm = quality_by(session, canary.endpoint, metric, canary.started_at, group="arm")
    return _counts(by_arm.get(CHAMPION)), _counts(by_arm.get(CANARY_ARM))


def _counts(proportion: object) -> ArmCounts:
    if proportion is None:
        return ArmCounts(0, 0)
    return ArmCounts(proportion.successes, proportion.trials)  # type: ignore[attr-defined]


def switched_off(sessions: sessionmaker[Session], canary: Canary) -> bool:
    """True once the canary arm has no traffic (the serving guard, or someone by hand)."""
    with sessions() as session:
        config = endpoints.read_endpoint(session, canary.endpoint).config
    arm = next((a for a in config.arms if a.name == CANARY_ARM), None)
    return arm is None or arm.weight <= 0 or arm.target != canary.version


def end_canary(sessions: sessionmaker[Session], canary: Canary, actor: str) -> int:
    """Give the endpoint its routing from before the canary back; returns the revision."""
    with sessions.begin() as session:
        experiments.end_experiment(session, canary.experiment_id)
        return endpoints.save_routing(session, canary.endpoint, canary.previous, actor)
