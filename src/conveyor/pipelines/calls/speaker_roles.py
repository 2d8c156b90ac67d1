"""Which speaker is the agent and which the customer.

A configured channel mapping wins (stereo recorders put the agent on a fixed channel).
Otherwise each speaker scores agent cues (greetings, "thank you for calling", introducing
themselves, "how can I help") against customer cues ("I bought", "my account"), and whoever
speaks first gets a small agent bonus; the confidence grows with the margin between them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

AGENT_CUES = (
    r"thank(s| you) for calling",
    r"how (can|may|could) i (help|assist)",
    r"my name is",
    r"this is \w+( \w+)? speaking",
    r"\bspeaking\b",
    r"(support|customer service|help ?desk)",
    r"anything else",
    r"have a (nice|lovely|great|good) (day|evening|weekend)",
    r"let me (check|look)",
    r"i (can|will) (update|check|escalate|transfer|help)",
    r"your (account|line|order|bill|contract)",
)
CUSTOMER_CUES = (
    r"\bmy (internet|account|order|bill|router|phone|contract|line|package|card)\b",
    r"i (bought|ordered|paid|want|need|would like)",
    r"i('m| am) calling (about|because)",
    r"(third|second) time",
    r"\bcancel\b",
)
FIRST_SPEAKER_BONUS = 0.5


def score(text: str) -> float:
    lowered = text.lower()
    agent = sum(bool(re.search(cue, lowered)) for cue in AGENT_CUES)
    customer = sum(bool(re.search(cue, lowered)) for cue in CUSTOMER_CUES)
    return agent - customer


def assign_roles(
    texts: Mapping[str, str],
    order: Sequence[str],
    talk: Mapping[str, float],
    channel_roles: Mapping[str, str] | None = None,
) -> dict[str, tuple[str, float]]:
    """``{speaker: (role, confidence)}``; ``channel_roles`` maps speaker -> role when the
    recording's channels are mapped in the settings."""
    if channel_roles:
        return {
            s: (channel_roles.get(s, "other"), 1.0 if s in channel_roles else 0.5) for s in order
        }
    if not order:
        return {}
    scores = {
        s: score(texts.get(s, "")) + (FIRST_SPEAKER_BONUS if s == order[0] else 0.0) for s in order
    }
    agent = max(order, key=lambda s: scores[s])
    rest = [s for s in order if s != agent]
    if not rest:
        role = "agent" if scores[agent] > FIRST_SPEAKER_BONUS else "customer"
        return {agent: (role, round(_confidence(abs(scores[agent]) - 0.5), 3))}
    customer = max(rest, key=lambda s: talk.get(s, 0.0))
    confidence = round(_confidence(scores[agent] - scores[customer]), 3)
    return {
        s: ("agent", confidence)
        if s == agent
        else ("customer", confidence)
        if s == customer
        else ("other", 0.5)
        for s in order
    }


def _confidence(margin: float) -> float:
    """0.5 for no evidence either way, approaching 1 as the cue margin grows."""
    return 1 / (1 + math.exp(-margin))
