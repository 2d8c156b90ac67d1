"""Which role a routing change needs: a pure function of the endpoint's old and new config.

Promoting a version (moving ``champion``) is an admin's decision, so anything that gives a
version other than the champion more traffic than it had is one too, as are creating an
endpoint, changing the model it serves, turning on feature capture (it stores request data)
and turning off automatic rollback. Everything else an operator may do: move traffic back to
the champion, stop a canary, change the salt or the key field, rules that send requests to
the champion. A version pinned by number counts as non-champion even when it is the champion
today: the pin outlives the next promotion.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.auth.roles import Role
from conveyor.serving.routing import CHAMPION, RoutingConfig, Rule

SHARE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ChangeRole:
    """The role a change needs, and in words why it needs more than an operator."""

    role: Role
    reasons: tuple[str, ...] = ()


def role_for_routing_change(old: RoutingConfig | None, new: RoutingConfig) -> ChangeRole:
    reasons = _admin_reasons(old, new)
    return ChangeRole(Role.ADMIN if reasons else Role.OPERATOR, tuple(reasons))


def _admin_reasons(old: RoutingConfig | None, new: RoutingConfig) -> list[str]:
    if old is None:
        return ["it creates the endpoint"]
    reasons = []
    if new.model != old.model:
        reasons.append(f"it changes the served model from {old.model!r} to {new.model!r}")
    if new.capture_features and not old.capture_features:
        reasons.append("it turns on feature capture (request data is stored)")
    if old.auto_rollback and not new.auto_rollback:
        reasons.append("it turns off automatic rollback")
    reasons += _more_traffic(old, new) + _new_rules(old, new)
    return reasons


def traffic_shares(config: RoutingConfig) -> dict[str | int, float]:
    """Weighted share of traffic per non-champion target (an alias or a version)."""
    total = sum(arm.weight for arm in config.arms)
    shares: dict[str | int, float] = {}
    if total <= 0:
        return shares
    for arm in config.arms:
        if arm.target != CHAMPION and arm.weight > 0:
            shares[arm.target] = shares.get(arm.target, 0.0) + arm.weight / total
    return shares


def _more_traffic(old: RoutingConfig, new: RoutingConfig) -> list[str]:
    before = traffic_shares(old) if old.model == new.model else {}
    return [
        f"it sends {share:.0%} of traffic to {_target(target)} (was {before.get(target, 0.0):.0%})"
        for target, share in traffic_shares(new).items()
        if share > before.get(target, 0.0) + SHARE_TOLERANCE
    ]


def _new_rules(old: RoutingConfig, new: RoutingConfig) -> list[str]:
    existing = {_rule_key(old, rule) for rule in old.rules} if old.model == new.model else set()
    return [
        f"rules[{index}] sends matching requests to {_target(new.arm(rule.arm).target)}"
        for index, rule in enumerate(new.rules)
        if new.arm(rule.arm).target != CHAMPION and _rule_key(new, rule) not in existing
    ]


def _rule_key(config: RoutingConfig, rule: Rule) -> tuple[str, str, str, str | int]:
    return (rule.field, rule.operator, repr(rule.value), config.arm(rule.arm).target)


def _target(target: str | int) -> str:
    return f"version {target}" if isinstance(target, int) else f"the alias {target!r}"
