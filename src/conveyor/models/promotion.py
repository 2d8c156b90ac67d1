"""Promotion rules as plain functions: the gate, the aliases a history implies, rollback targets.

``champion`` is the version that is served; ``challenger`` the newest version that did not pass
the gate. The alias history is a list of changes, oldest first; the champion's line is a stack:
a promotion pushes a version, a rollback pops back to the one before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conveyor.errors import ConveyorError

CHAMPION = "champion"
CHALLENGER = "challenger"
PROMOTE, CHALLENGE, ROLLBACK = "promote", "challenge", "rollback"
LOWER_IS_BETTER = frozenset({"brier", "log_loss", "rmse"})


class NoRollbackTargetError(ConveyorError):
    code = "invalid_state"
    http_status = 409


@dataclass(frozen=True)
class GateRule:
    """Promote when the candidate's ``metric`` is not worse than the champion's by more than
    ``margin`` (absolute), both measured on the candidate's held-out rows."""

    metric: str = "roc_auc"
    margin: float = 0.0

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class Decision:
    alias: str
    reason: str

    @property
    def promoted(self) -> bool:
        return self.alias == CHAMPION


@dataclass(frozen=True)
class AliasChange:
    alias: str
    from_version: int | None
    to_version: int | None
    action: str


def decide(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    rule: GateRule,
    champion_version: int | None = None,
) -> Decision:
    """The gate: where the candidate version goes, and why, in words for the history."""
    if champion is None:
        return Decision(CHAMPION, "first version of this model: no champion to compare with")
    new, old = candidate[rule.metric], champion[rule.metric]
    change = (new - old) if rule.higher_is_better else (old - new)
    compared = (
        f"held-out {rule.metric} {new:.4f} vs champion v{champion_version} {old:.4f} "
        f"(margin {rule.margin:g})"
    )
    if change >= -rule.margin:
        return Decision(CHAMPION, f"not worse than the champion: {compared}")
    return Decision(CHALLENGER, f"worse than the champion: {compared}")


def current_aliases(changes: Sequence[AliasChange]) -> dict[str, int]:
    aliases: dict[str, int] = {}
    for change in changes:
        if change.to_version is None:
            aliases.pop(change.alias, None)
        else:
            aliases[change.alias] = change.to_version
    return aliases


def champion_line(changes: Sequence[AliasChange]) -> list[int]:
    """Champions in the order they were installed, rolled-back ones removed; last is current."""
    line: list[int] = []
    for change in changes:
        if change.alias != CHAMPION:
            continue
        if change.action == ROLLBACK:
            if line:
                line.pop()
        elif change.to_version is not None:
            line.append(change.to_version)
    return line


def rollback_target(changes: Sequence[AliasChange]) -> tuple[int, int]:
    """(current champion, the champion before it); raises when there is nothing to go back to."""
    line = champion_line(changes)
    if len(line) < 2:
        current = f"v{line[-1]}" if line else "none"
        raise NoRollbackTargetError(
            f"no earlier champion to roll back to (current champion: {current}); promote "
            "another version by training again."
        )
    return line[-1], line[-2]
