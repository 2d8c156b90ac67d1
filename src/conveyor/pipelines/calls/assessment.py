"""The poor-call flag: every rule that fires adds a reason a person can read and check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    anger: float = 0.35
    sadness: float = 0.45
    satisfaction: float = 2.5
    agent_talk_share: float = 0.8
    long_silence_seconds: float = 8.0
    interruptions: int = 3


def silences(turns: Sequence[Sequence], longest: float) -> list[float]:
    """Gaps longer than ``longest`` seconds in which nobody speaks (between first and last
    speech, where a silence means someone is waiting)."""
    spans = sorted((t[0], t[1]) for t in turns)
    gaps, reach = [], None
    for start, end in spans:
        if reach is not None and start - reach > longest:
            gaps.append(start - reach)
        reach = end if reach is None else max(reach, end)
    return gaps


def interruptions(turns: Sequence[Sequence], interrupter: str, other: str) -> int:
    """Turns of ``interrupter`` that start while ``other`` is still speaking (> 0.3 s)."""
    theirs = [(t[0], t[1]) for t in turns if t[2] == other]
    return sum(
        any(start + 0.3 < end_other and start > start_other for start_other, end_other in theirs)
        for start, _, speaker in turns
        if speaker == interrupter
    )


def assess(
    customer: Mapping | None,
    agent: Mapping | None,
    talk_total: float,
    gaps: Sequence[float],
    interrupted: int,
    limits: Thresholds,
) -> tuple[bool, list[str]]:
    reasons: list[str] = []
    if customer:
        late = customer.get("emotions_last_third", customer["emotions"])
        if late["anger"] >= limits.anger:
            reasons.append(f"customer anger {late['anger']:.2f} in the last third")
        if late["sadness"] >= limits.sadness:
            reasons.append(f"customer sadness {late['sadness']:.2f} in the last third")
        if customer["satisfaction"] < limits.satisfaction:
            reasons.append(f"customer satisfaction {customer['satisfaction']:.1f}/5")
    if agent and talk_total > 0:
        share = agent["talk_time_s"] / talk_total
        if share > limits.agent_talk_share:
            reasons.append(f"agent talked {share:.0%} of the time")
    if gaps:
        reasons.append(
            f"long silences: {len(gaps)} longer than {limits.long_silence_seconds:.0f} s "
            f"(longest {max(gaps):.0f} s)"
        )
    if interrupted >= limits.interruptions:
        reasons.append(f"customer interrupted the agent {interrupted} times")
    return bool(reasons), reasons
