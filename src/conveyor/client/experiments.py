"""A/B experiments on serving endpoints as the client returns them: the period, the metric and
each arm's successes out of trials with a 95% Wilson interval, and a plain reading of who
leads and whether the intervals already separate the arms."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conveyor.client.html import grid_table, key_value_table
from conveyor.client.models import build

if TYPE_CHECKING:
    import pandas


@dataclasses.dataclass(frozen=True)
class ArmResult:
    """One arm's outcome: ``successes`` of ``trials`` (labels right, or recommendations
    followed by a watch), ``value`` their share and ``low``/``high`` its 95% interval."""

    arm: str
    successes: int
    trials: int
    value: float | None
    low: float | None
    high: float | None

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.arm}: no outcomes yet"
        return (
            f"{self.arm}: {self.value:.3f} [{self.low:.3f}, {self.high:.3f}] "
            f"({self.successes}/{self.trials})"
        )


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment; ``results`` is filled by ``experiment(id)`` (None in lists)."""

    id: int
    endpoint: str
    name: str
    metric: str
    starts_at: datetime
    ends_at: datetime | None
    created_by: str
    results: list[ArmResult] | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Experiment:
        results = data.get("results")
        arms = None if results is None else [build(ArmResult, r) for r in results]
        return build(cls, data, results=arms)

    def arm(self, name: str) -> ArmResult:
        for result in self.results or []:
            if result.arm == name:
                return result
        raise KeyError(f"experiment {self.id} has no results for an arm named {name!r}")

    @property
    def leader(self) -> ArmResult | None:
        """The arm with the highest value so far (None before any outcome)."""
        scored = [r for r in self.results or [] if r.value is not None]
        return max(scored, key=lambda r: r.value or 0.0) if scored else None

    @property
    def separated(self) -> bool:
        """Whether the leader's interval lies above every other arm's: the difference is
        unlikely to be chance (at about the 95% level per arm)."""
        leader = self.leader
        others = [r for r in self.results or [] if r is not leader and r.trials]
        if leader is None or leader.low is None or not others:
            return False
        return all(r.high is not None and leader.low > r.high for r in others)

    def verdict(self) -> str:
        """One sentence on the outcome, for a notebook or a log."""
        leader = self.leader
        if leader is None:
            return f"experiment {self.name!r}: no outcomes yet"
        others = "; ".join(str(r) for r in self.results or [] if r is not leader)
        state = "ahead, intervals separate" if self.separated else "ahead, intervals overlap"
        return f"{self.metric}: {leader} {state} from {others or 'no other arm'}"

    def to_pandas(self) -> pandas.DataFrame:
        """One row per arm: successes, trials, value, low, high."""
        import pandas

        rows = [dataclasses.asdict(r) for r in self.results or []]
        columns = [f.name for f in dataclasses.fields(ArmResult)]
        return pandas.DataFrame(rows, columns=columns).set_index("arm")

    def _repr_html_(self) -> str:
        pairs = [
            ("endpoint", self.endpoint),
            ("metric", self.metric),
            ("from", self.starts_at),
            ("until", self.ends_at or "running"),
            ("verdict", self.verdict()),
        ]
        summary = key_value_table(f"experiment {self.id}: {self.name}", pairs)
        columns = [f.name for f in dataclasses.fields(ArmResult)]
        rows = [[getattr(r, c) for c in columns] for r in self.results or []]
        return summary + grid_table("arms", columns, rows)
