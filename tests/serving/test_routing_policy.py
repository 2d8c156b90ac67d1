"""Which role a routing change needs (pure): operators move traffic toward the champion only."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.auth.roles import Role
from conveyor.serving.routing import parse_config
from conveyor.serving.routing_policy import role_for_routing_change

CHAMPION_ONLY = {"model": "heart", "arms": [{"name": "champion", "target": "champion"}]}
CANARY = {
    "model": "heart",
    "arms": [
        {"name": "champion", "target": "champion", "weight": 90},
        {"name": "canary", "target": 7, "weight": 10},
    ],
}


def _role(old: dict[str, Any] | None, new: dict[str, Any]) -> tuple[Role, str]:
    change = role_for_routing_change(parse_config(old) if old else None, parse_config(new))
    return change.role, "; ".join(change.reasons)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (None, CHAMPION_ONLY, "creates the endpoint"),
        (CHAMPION_ONLY, CANARY, "sends 10% of traffic to version 7 (was 0%)"),
        (CHAMPION_ONLY, {"model": "heart", "arms": [{"name": "x", "target": 3}]}, "version 3"),
        (CHAMPION_ONLY, CHAMPION_ONLY | {"capture_features": True}, "feature capture"),
        (CHAMPION_ONLY, CHAMPION_ONLY | {"model": "movies"}, "served model"),
        (CANARY | {"auto_rollback": True}, CANARY, "turns off automatic rollback"),
        (
            CANARY,
            CANARY
            | {
                "arms": [
                    {"name": "champion", "target": "champion", "weight": 50},
                    CANARY["arms"][1],
                ]
            },
            "sends 17% of traffic to version 7 (was 10%)",
        ),
        (
            CHAMPION_ONLY,
            {"model": "heart", "arms": [{"name": "c", "target": "challenger", "weight": 1}]},
            "the alias 'challenger'",
        ),
        (
            CANARY | {"arms": [CANARY["arms"][0], CANARY["arms"][1] | {"weight": 0}]},
            CANARY
            | {
                "arms": [CANARY["arms"][0], CANARY["arms"][1] | {"weight": 0}],
                "rules": [{"field": "age", "operator": ">=", "value": 65, "arm": "canary"}],
            },
            "rules[0] sends matching requests to version 7",
        ),
    ],
)
def test_changes_that_need_an_admin(old, new, reason) -> None:  # type: ignore[no-untyped-def]
    role, reasons = _role(old, new)
    assert role is Role.ADMIN
    assert reason in reasons


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (CHAMPION_ONLY, CHAMPION_ONLY),
        (CANARY, CHAMPION_ONLY),  # stop the canary
        (CANARY, CANARY | {"arms": [CANARY["arms"][0], CANARY["arms"][1] | {"weight": 5}]}),
        (CANARY, CANARY | {"salt": "new", "key_field": "patient"}),
        (CANARY | {"capture_features": True}, CANARY),  # capture off
        (CANARY, CANARY | {"auto_rollback": True}),
        (
            CANARY | {"rules": [{"field": "age", "operator": ">=", "value": 65, "arm": "canary"}]},
            CANARY | {"rules": [{"field": "age", "operator": ">=", "value": 65, "arm": "canary"}]},
        ),
        (
            CANARY,
            CANARY | {"rules": [{"field": "age", "operator": "<", "value": 30, "arm": "champion"}]},
        ),
    ],
)
def test_changes_an_operator_may_make(old, new) -> None:  # type: ignore[no-untyped-def]
    assert _role(old, new) == (Role.OPERATOR, "")
