"""Words to speakers, and words to utterances: the conversation every later step reads.

Pure functions over plain data: words are ``[text, start, end, probability]`` lists and turns
``[start, end, speaker]`` lists, as they are stored in the work folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RATE = 16000
UTTERANCE_GAP_S = 1.0
WORD_CORE_S = 0.4


@dataclass(frozen=True)
class Utterance:
    speaker: str
    start: float
    end: float
    text: str
    words: int

    def as_dict(self) -> dict:
        return {
            "start": round(self.start, 2),
            "end": round(self.end, 2),
            "speaker": self.speaker,
            "text": self.text,
        }


def speaker_by_overlap(words: Sequence[list], turns: Sequence[list]) -> list[str]:
    """Each word's speaker: the diarised turn overlapping it most, else the nearest turn.

    Only the word's last WORD_CORE_S count: Whisper often stretches a word's start back into
    the pause before it, into the previous speaker's turn; its end is reliable."""
    if not turns:
        return ["S1"] * len(words)
    starts = np.array([t[0] for t in turns])
    ends = np.array([t[1] for t in turns])
    speakers = []
    for _, first, end, _ in words:
        start = max(first, end - WORD_CORE_S)
        overlap = np.minimum(ends, end) - np.maximum(starts, start)
        if overlap.max() > 0:
            speakers.append(turns[int(np.argmax(overlap))][2])
            continue
        distance = np.maximum(starts - end, start - ends)
        speakers.append(turns[int(np.argmin(distance))][2])
    return speakers


def speaker_by_channel(
    words: Sequence[list], samples: np.ndarray, channel_speakers: Sequence[str]
) -> list[str]:
    """Stereo: each word belongs to the channel that is loudest while it is spoken."""
    speakers = []
    for _, start, end, _ in words:
        clip = samples[:, int(start * RATE) : max(int(end * RATE), int(start * RATE) + 1)]
        energy = (clip.astype(np.float64) ** 2).sum(axis=1)
        speakers.append(channel_speakers[int(np.argmax(energy))])
    return speakers


def utterances(words: Sequence[list], speakers: Sequence[str]) -> list[Utterance]:
    """Consecutive words of one speaker, split at pauses longer than UTTERANCE_GAP_S."""
    found: list[Utterance] = []
    current: list[tuple[list, str]] = []
    for word, speaker in zip(words, speakers, strict=True):
        if current and (speaker != current[-1][1] or word[1] - current[-1][0][2] > UTTERANCE_GAP_S):
            found.append(_utterance(current))
            current = []
        current.append((word, speaker))
    if current:
        found.append(_utterance(current))
    return found


def _utterance(items: Sequence[tuple[list, str]]) -> Utterance:
    text = " ".join(word[0] for word, _ in items)
    return Utterance(items[0][1], items[0][0][1], items[-1][0][2], text, len(items))


def talk_times(turns: Sequence[list]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for start, end, speaker in turns:
        totals[speaker] = totals.get(speaker, 0.0) + (end - start)
    return totals


def speaker_order(utterances_: Sequence[Utterance], turns: Sequence[list]) -> list[str]:
    """Speakers in order of first speech (diarised turns first, then any only in words)."""
    order: list[str] = []
    for speaker in [t[2] for t in sorted(turns)] + [u.speaker for u in utterances_]:
        if speaker not in order:
            order.append(speaker)
    return order
