"""A delivery's decisions as plain functions: the evaluation gate of a delivered version and the
canary's verdict from the online metric of both arms."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from conveyor.delivery.layout import CanarySpec, GateSpec, PromotionSpec
from conveyor.delivery.tags import COMMIT_TAG, REPOSITORY_TAG
from conveyor.models.promotion import CHALLENGER, CHAMPION, LOWER_IS_BETTER, Decision, GateRule

GATE_PASSED = "passed the gate"
GATE_REFUSED = "refused at the gate"
PROMOTE, ROLLBACK, WAIT = "promote", "rollback", "wait"


def delivery_of(record: Any) -> GateSpec | None:
    """The gate of a delivered training item (its record's ``delivery``), else None."""
    delivery = record.get("delivery") if isinstance(record, Mapping) else None
    if not delivery:
        return None
    gate = delivery.get("gate") or {}
    return GateSpec(gate.get("metric"), gate.get("minimum"), float(gate.get("margin") or 0.0))


def source_tags(record: Any) -> dict[str, str]:
    """MLflow tags naming the commit (and repository) a delivered version was trained from."""
    delivery = record.get("delivery") if isinstance(record, Mapping) else None
    if not delivery or not delivery.get("commit"):
        return {}
    return {COMMIT_TAG: str(delivery["commit"]), REPOSITORY_TAG: str(delivery.get("repository"))}


def gate_rule(gate: GateSpec, default_metric: str) -> GateRule:
    return GateRule(gate.metric or default_metric, gate.margin)


def delivered_decision(
    decision: Decision, heldout: Mapping[str, float], gate: GateSpec, rule: GateRule
) -> Decision:
    """Where a delivered version goes: the canary decides, so a version that passes the gate
    becomes ``challenger``, not ``champion``; only a model's first version (no champion to
    compare with online) becomes champion at once."""
    below = _below_minimum(heldout, gate, rule.metric)
    if below:
        return Decision(CHALLENGER, f"{GATE_REFUSED}: {below}")
    if not decision.promoted:
        return Decision(CHALLENGER, f"{GATE_REFUSED}: {decision.reason}")
    if decision.reason.startswith("first version"):
        return Decision(CHAMPION, f"{GATE_PASSED}: {decision.reason}")
    return Decision(CHALLENGER, f"{GATE_PASSED} ({decision.reason}); the canary decides")


def gate_passed(reason: str) -> bool:
    return reason.startswith(GATE_PASSED)


def _below_minimum(heldout: Mapping[str, float], gate: GateSpec, metric: str) -> str | None:
    if gate.minimum is None:
        return None
    value = heldout.get(metric)
    if value is None:
        return f"the run has no held-out {metric} to compare with the minimum"
    if metric in LOWER_IS_BETTER and value > gate.minimum:
        return f"held-out {metric} {value:.4f} above the maximum {gate.minimum:g}"
    if metric not in LOWER_IS_BETTER and value < gate.minimum:
        return f"held-out {metric} {value:.4f} below the minimum {gate.minimum:g}"
    return None


@dataclass(frozen=True)
class ArmCounts:
    successes: int
    trials: int

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0

    def text(self) -> str:
        return f"{self.rate:.3f} ({self.successes}/{self.trials})"


@dataclass(frozen=True)
class Verdict:
    action: str  # promote, rollback or wait
    reason: str
    z: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "z": self.z}


def z_statistic(champion: ArmCounts, canary: ArmCounts) -> float:
    """Two-proportion z statistic (pooled), positive when the canary does better."""
    pooled = (champion.successes + canary.successes) / (champion.trials + canary.trials)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / champion.trials + 1 / canary.trials))
    if spread == 0:
        return 0.0
    return (canary.rate - champion.rate) / spread


def canary_verdict(
    champion: ArmCounts,
    canary: ArmCounts,
    spec: CanarySpec,
    promotion: PromotionSpec,
    timed_out: bool = False,
) -> Verdict:
    """Promote when the canary wins with ``spec.confidence`` (one-sided test), roll back when
    it loses with that confidence; with ``when = "not_worse"`` promote once enough samples
    showed no loss. Undecided at the time limit: ``promotion.on_timeout``."""
    needed = spec.min_samples
    if min(champion.trials, canary.trials) < needed:
        return _timeout(promotion, f"fewer than {needed} outcomes per arm", timed_out)
    z = z_statistic(champion, canary)
    critical = NormalDist().inv_cdf(spec.confidence)
    compared = (
        f"online {spec.metric} canary {canary.text()} vs champion {champion.text()}, "
        f"z={z:.2f}, needed {critical:.2f} for {spec.confidence:.0%} confidence"
    )
    if z >= critical:
        return Verdict(PROMOTE, f"the canary wins: {compared}", z)
    if z <= -critical:
        return Verdict(ROLLBACK, f"the canary loses: {compared}", z)
    if promotion.when == "not_worse":
        return Verdict(PROMOTE, f"the canary is not worse: {compared}", z)
    return _timeout(promotion, f"undecided: {compared}", timed_out, z)


def _timeout(
    promotion: PromotionSpec, state: str, timed_out: bool, z: float | None = None
) -> Verdict:
    if not timed_out:
        return Verdict(WAIT, state, z)
    action = PROMOTE if promotion.on_timeout == "promote" else ROLLBACK
    return Verdict(action, f"time limit reached, {state}; on_timeout = {action}", z)
