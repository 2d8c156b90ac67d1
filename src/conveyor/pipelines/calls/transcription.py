"""Speech to text with word timestamps (faster-whisper), in windows cut only at silences.

Whisper reads 30 s at a time. Cutting the call ourselves at pauses found by voice activity
detection means no word ever straddles a window edge (nothing lost or said twice), silent
stretches cost nothing, and every window is independent (no text carried over that could
make Whisper repeat itself on a long call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from conveyor.pipelines.calls.diarisation import Region

RATE = 16000
MARGIN_S = 0.2  # audio kept around each window so the first and last words are whole


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    probability: float

    def as_list(self) -> list:
        return [self.text, round(self.start, 3), round(self.end, 3), round(self.probability, 3)]


def windows(regions: Sequence[Region], longest_s: float) -> list[Region]:
    """Speech regions packed into windows of at most ``longest_s``, cut between regions.

    A single region longer than ``longest_s`` (a monologue without a pause) is cut into equal
    pieces; that is the only place a cut may fall inside speech.
    """
    packed: list[Region] = []
    for start, end in _split_long(regions, longest_s - 2 * MARGIN_S):
        if packed and end - packed[-1][0] <= longest_s - 2 * MARGIN_S:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    return packed


def _split_long(regions: Sequence[Region], longest_s: float) -> list[Region]:
    pieces: list[Region] = []
    for start, end in regions:
        count = int(np.ceil((end - start) / longest_s))
        edges = np.linspace(start, end, count + 1)
        pieces.extend(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
    return pieces


def transcribe(
    model: Any, mono: np.ndarray, regions: Sequence[Region], longest_s: float, options: dict
) -> tuple[list[Word], str | None]:
    """All words of ``mono`` with times on the call's clock, and the detected language."""
    words: list[Word] = []
    language = options.get("language")
    for start, end in windows(regions, longest_s):
        left = max(0.0, start - MARGIN_S)
        clip = mono[int(left * RATE) : int((end + MARGIN_S) * RATE)]
        segments, info = model.transcribe(clip, **options)
        language = language or info.language
        words.extend(
            Word(w.word.strip(), left + w.start, left + w.end, w.probability)
            for segment in segments
            for w in segment.words or ()
            if w.word.strip()
        )
    return words, language


def whisper_options(beam_size: int, language: str | None) -> dict:
    return {
        "language": language,
        "beam_size": beam_size,
        "best_of": 1,
        "word_timestamps": True,
        "condition_on_previous_text": False,
        "vad_filter": False,
    }
