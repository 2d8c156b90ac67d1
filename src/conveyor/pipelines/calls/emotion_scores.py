"""Six emotions (sadness, joy, love, anger, fear, surprise) in [0, 1] and a 1-5 satisfaction.

The offline default scores each utterance, not the whole transcript: NRC lexicon emotions
with negation ("not happy" is no joy; it reads as disappointment) and intensifiers ("very
angry" counts more), blended with VADER's sentence polarity, then averaged over a speaker's
utterances weighted by how long each one lasted. A transformer classifier, when configured,
replaces the lexicon part (see :mod:`conveyor.pipelines.calls.classifier`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence

EMOTIONS = ("sadness", "joy", "love", "anger", "fear", "surprise")
NEGATORS = {
    "not",
    "no",
    "never",
    "nobody",
    "nothing",
    "neither",
    "nor",
    "hardly",
    "without",
    "cannot",
    "dont",
    "didnt",
    "doesnt",
    "isnt",
    "wasnt",
    "wont",
    "cant",
    "aint",
}
INTENSIFIERS = {
    "very": 1.5,
    "really": 1.4,
    "so": 1.3,
    "extremely": 1.8,
    "totally": 1.5,
    "absolutely": 1.6,
    "completely": 1.5,
    "incredibly": 1.7,
    "too": 1.2,
}
LOVE_WORDS = {
    "love",
    "loved",
    "lovely",
    "adore",
    "wonderful",
    "sweet",
    "dear",
    "fond",
    "appreciate",
    "appreciated",
    "grateful",
    "thankful",
    "delighted",
    "kind",
}
NEGATION_SCOPE = 3
NEGATED_JOY_SADNESS = 0.3  # "not happy" is disappointment, weaker than "sad"
LEXICON_WEIGHT = 0.6
SATURATION = 1.5  # lexicon hits per utterance that make a score of about 0.63

Scorer = Callable[[str], dict[str, float]]


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower().replace("n't", " not").replace("'", ""))


def lexicon_scores(text: str, lexicon: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Emotion hits of one utterance, with negation and intensifiers, squashed to [0, 1]."""
    raw = dict.fromkeys(EMOTIONS, 0.0)
    words = tokens(text)
    for index, word in enumerate(words):
        found = set(lexicon.get(word, ())) & set(EMOTIONS)
        if word in LOVE_WORDS:
            found.add("love")
        if not found:
            continue
        before = words[max(0, index - NEGATION_SCOPE) : index]
        weight = math.prod(INTENSIFIERS.get(w, 1.0) for w in before[-1:])
        if NEGATORS & set(before):
            # "not happy" reads as disappointment; "not angry" counts for nothing.
            if found & {"joy", "love"}:
                raw["sadness"] += NEGATED_JOY_SADNESS * weight
            continue
        for emotion in found:
            raw[emotion] += weight
    return {e: 1 - math.exp(-raw[e] / SATURATION) for e in EMOTIONS}


def polarity_scores(compound: float, lexical: Mapping[str, float]) -> dict[str, float]:
    """VADER's polarity spread over the emotions the lexicon saw (or the usual ones)."""
    positive, negative = max(compound, 0.0), max(-compound, 0.0)
    negatives = {e: lexical[e] for e in ("anger", "sadness", "fear")}
    total = sum(negatives.values())
    shares = (
        {e: v / total for e, v in negatives.items()}
        if total
        else {"anger": 0.5, "sadness": 0.5, "fear": 0.0}
    )
    return {
        "joy": positive,
        "love": positive * lexical["love"],
        "surprise": 0.0,
        **{e: negative * share for e, share in shares.items()},
    }


def utterance_emotions(
    text: str, compound: float, lexical: Mapping[str, float]
) -> dict[str, float]:
    polar = polarity_scores(compound, lexical)
    return {
        e: round(min(1.0, LEXICON_WEIGHT * lexical[e] + (1 - LEXICON_WEIGHT) * polar[e]), 4)
        for e in EMOTIONS
    }


def weighted_mean(
    scored: Sequence[tuple[float, dict[str, float]]],
) -> dict[str, float]:
    """Duration-weighted mean of per-utterance scores: ``[(seconds, scores), ...]``."""
    total = sum(seconds for seconds, _ in scored)
    if total <= 0:
        return dict.fromkeys(EMOTIONS, 0.0)
    return {e: round(sum(s * v[e] for s, v in scored) / total, 4) for e in EMOTIONS}


def satisfaction(
    compounds: Sequence[tuple[float, float, float]], emotions: Mapping[str, float]
) -> float:
    """1-5 stars from ``[(seconds, position 0..1 in the call, compound), ...]``: polarity
    weighted by duration and, twice as much, near the end of the call (how it ended matters
    most), pulled down by anger and sadness."""
    weights = [seconds * (1 + position) for seconds, position, _ in compounds]
    if not compounds or sum(weights) <= 0:
        return 3.0
    mood = sum(w * c for w, (_, _, c) in zip(weights, compounds, strict=True)) / sum(weights)
    stars = 3 + 2 * mood - 1.5 * emotions["anger"] - 1.0 * emotions["sadness"] + emotions["joy"]
    return round(min(5.0, max(1.0, stars)), 2)


def top_emotion(emotions: Mapping[str, float]) -> str | None:
    best = max(EMOTIONS, key=lambda e: emotions.get(e, 0.0))
    return best if emotions.get(best, 0.0) > 0.05 else None
