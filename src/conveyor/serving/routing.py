"""Routing as data: an endpoint's arms (a model alias or version with a weight), rules on
request fields as (field, operator, value) and the sticky key. Pure functions: nothing here
evaluates code from a configuration, only the fixed operator table below.

    {"model": "heart",
     "arms": [{"name": "champion", "target": "champion", "weight": 90},
              {"name": "canary", "target": 7, "weight": 10}],
     "rules": [{"field": "age", "operator": ">=", "value": 65, "arm": "champion"}],
     "key_field": "user_id", "salt": "heart-2026-11", "capture_features": false,
     "auto_rollback": false}

A request goes to the arm of the first rule that matches its first record; otherwise the
hash of (salt, request key) picks an arm by weight, so one key always gets the same arm until
the weights or the salt change. A request without a key is assigned at random.
"""

from __future__ import annotations

import hashlib
import operator
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.errors import InputRejectedError

CHAMPION = "champion"


def _member(value: Any, allowed: Any) -> bool:
    return value in allowed


def _not_member(value: Any, allowed: Any) -> bool:
    return value not in allowed


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": _member,
    "not_in": _not_member,
}


class RoutingConfigError(InputRejectedError):
    code = "invalid_routing"
    http_status = 422


@dataclass(frozen=True)
class Arm:
    name: str
    target: str | int  # an alias of the endpoint's model, or a version number
    weight: float


@dataclass(frozen=True)
class Rule:
    field: str
    operator: str
    value: Any
    arm: str

    def matches(self, record: Mapping[str, Any]) -> bool:
        if self.field not in record:
            return False
        try:
            return bool(OPERATORS[self.operator](record[self.field], self.value))
        except TypeError:  # e.g. a string compared with a number: the rule does not apply
            return False


@dataclass(frozen=True)
class RoutingConfig:
    model: str
    arms: tuple[Arm, ...]
    rules: tuple[Rule, ...] = ()
    key_field: str | None = None
    salt: str = ""
    capture_features: bool = False
    auto_rollback: bool = False  # a canary arm that breaches the alert thresholds gets weight 0

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "arms": [{"name": a.name, "target": a.target, "weight": a.weight} for a in self.arms],
            "rules": [vars(r) for r in self.rules],
            "key_field": self.key_field,
            "salt": self.salt,
            "capture_features": self.capture_features,
            "auto_rollback": self.auto_rollback,
        }


def default_config(model: str, key_field: str | None = None) -> RoutingConfig:
    return RoutingConfig(model, (Arm(CHAMPION, CHAMPION, 1.0),), key_field=key_field, salt=model)


def unit_hash(salt: str, key: str) -> float:
    """A stable number in [0, 1) for (salt, key): the same on every replica and restart."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose_arm(
    config: RoutingConfig,
    record: Mapping[str, Any] | None,
    key: str | None,
    chance: Callable[[], float] = random.random,
) -> Arm:
    """The arm that answers a request (``record`` is its first record)."""
    if record is not None:
        for rule in config.rules:
            if rule.matches(record):
                return config.arm(rule.arm)
    point = unit_hash(config.salt, key) if key is not None else chance()
    return weighted_pick(config.arms, point)


def weighted_pick(arms: tuple[Arm, ...], point: float) -> Arm:
    total = sum(a.weight for a in arms)
    if total <= 0:  # only zero-weight arms are loaded (the weighted ones failed): serve anyway
        return arms[0]
    threshold = point * total
    running = 0.0
    for arm in arms:
        running += arm.weight
        if threshold < running:
            return arm
    return next(a for a in reversed(arms) if a.weight > 0)  # point * total rounded up to total


def parse_config(data: Any) -> RoutingConfig:
    """Check a routing config (e.g. a PUT body); errors name the field and what to send."""
    if not isinstance(data, Mapping):
        raise RoutingConfigError("the routing config must be a JSON object.")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise RoutingConfigError("model: name the registered model this endpoint serves.")
    arms = _arms(data.get("arms"))
    names = {a.name for a in arms}
    rules = tuple(_rule(i, r, names) for i, r in enumerate(data.get("rules") or []))
    key_field = data.get("key_field")
    if key_field is not None and not isinstance(key_field, str):
        raise RoutingConfigError("key_field must be a field name or null.")
    known = {"model", "arms", "rules", "key_field", "salt", "capture_features", "auto_rollback"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RoutingConfigError(
            f"unknown routing setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}."
        )
    return RoutingConfig(
        model,
        arms,
        rules,
        key_field,
        str(data.get("salt") or model),
        bool(data.get("capture_features", False)),
        bool(data.get("auto_rollback", False)),
    )


def _arms(values: Any) -> tuple[Arm, ...]:
    if not isinstance(values, list) or not values:
        raise RoutingConfigError("arms: give at least one {name, target, weight}.")
    arms = []
    for index, value in enumerate(values):
        if not isinstance(value, Mapping):
            raise RoutingConfigError(f"arms[{index}] must be an object {{name, target, weight}}.")
        name, target, weight = value.get("name"), value.get("target"), value.get("weight", 1)
        if not isinstance(name, str) or not name:
            raise RoutingConfigError(f"arms[{index}].name must be a non-empty string.")
        if isinstance(target, bool) or not isinstance(target, str | int):
            raise RoutingConfigError(
                f'arms[{index}].target must be an alias (e.g. "champion") or a version number.'
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise RoutingConfigError(f"arms[{index}].weight must be a number >= 0.")
        arms.append(Arm(name, target, float(weight)))
    if len({a.name for a in arms}) != len(arms):
        raise RoutingConfigError("arms: every arm needs its own name.")
    if sum(a.weight for a in arms) <= 0:
        raise RoutingConfigError("arms: at least one weight must be above 0.")
    return tuple(arms)


def _rule(index: int, value: Any, arms: set[str]) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(value, Mapping):
        raise RoutingConfigError(f"{where} must be an object {{field, operator, value, arm}}.")
    if value.get("operator") not in OPERATORS:
        raise RoutingConfigError(
            f"{where}.operator must be one of {', '.join(OPERATORS)}; "
            f"got {value.get('operator')!r}."
        )
    if not isinstance(value.get("field"), str):
        raise RoutingConfigError(f"{where}.field must name a request field.")
    if value.get("arm") not in arms:
        raise RoutingConfigError(
            f"{where}.arm must name one of the arms: {', '.join(sorted(arms))}."
        )
    if value["operator"] in ("in", "not_in") and not isinstance(value.get("value"), list):
        raise RoutingConfigError(f"{where}.value must be a list for {value['operator']}.")
    return Rule(value["field"], value["operator"], value.get("value"), value["arm"])
