"""The promotion gate and alias history rules, as plain functions."""

from __future__ import annotations

import pytest

from conveyor.models.promotion import (
    AliasChange,
    GateRule,
    NoRollbackTargetError,
    champion_line,
    current_aliases,
    decide,
    rollback_target,
)


def test_first_version_becomes_champion() -> None:
    decision = decide({"roc_auc": 0.7}, None, GateRule())
    assert decision.promoted and "first version" in decision.reason


@pytest.mark.parametrize(
    ("new", "old", "margin", "promoted"),
    [
        (0.90, 0.90, 0.0, True),
        (0.91, 0.90, 0.0, True),
        (0.89, 0.90, 0.0, False),
        (0.89, 0.90, 0.02, True),
        (0.87, 0.90, 0.02, False),
    ],
)
def test_gate_promotes_unless_worse_by_more_than_margin(new, old, margin, promoted) -> None:
    decision = decide({"roc_auc": new}, {"roc_auc": old}, GateRule("roc_auc", margin), 4)
    assert decision.promoted is promoted
    assert "champion v4" in decision.reason and f"{new:.4f}" in decision.reason


def test_lower_is_better_for_brier_score() -> None:
    rule = GateRule("brier", 0.0)
    assert decide({"brier": 0.10}, {"brier": 0.12}, rule, 1).promoted
    assert not decide({"brier": 0.15}, {"brier": 0.12}, rule, 1).promoted


def test_history_folds_into_aliases_and_a_champion_line() -> None:
    changes = [
        AliasChange("champion", None, 1, "promote"),
        AliasChange("challenger", None, 2, "challenge"),
        AliasChange("champion", 1, 3, "promote"),
        AliasChange("champion", 3, 4, "promote"),
        AliasChange("champion", 4, 3, "rollback"),
    ]
    assert current_aliases(changes) == {"champion": 3, "challenger": 2}
    assert champion_line(changes) == [1, 3]
    assert rollback_target(changes) == (3, 1)


def test_rollback_needs_an_earlier_champion() -> None:
    with pytest.raises(NoRollbackTargetError, match="no earlier champion"):
        rollback_target([AliasChange("champion", None, 1, "promote")])
    with pytest.raises(NoRollbackTargetError, match="current champion: none"):
        rollback_target([])
