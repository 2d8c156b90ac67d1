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
    """All words of ``mono`` with times on the call's clock, and the language.

    ``model`` is a faster-whisper ``BatchedInferencePipeline``: the windows go through the
    encoder ``options["batch_size"]`` at a time, which is faster on a CPU than one by one.
    """
    duration = len(mono) / RATE
    clips = [
        {"start": max(0.0, start - MARGIN_S), "end": min(duration, end + MARGIN_S)}
        for start, end in windows(regions, longest_s)
    ]
    if not clips:
        return [], options.get("language")
    segments, info = model.transcribe(mono, clip_timestamps=clips, **options)
    words = [
        Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
        for segment in segments
        for w in segment.words or ()
        if w.word.strip()
    ]
    return drop_repeats(words), options.get("language") or info.language


def drop_repeats(words: Sequence[Word]) -> list[Word]:
    """Words heard twice where two windows' margins overlap (only possible when a monologue
    had to be cut inside speech): the same word starting within 0.3 s of the last one kept."""
    kept: list[Word] = []
    for word in sorted(words, key=lambda w: w.start):
        last = kept[-1] if kept else None
        if last and last.text.lower() == word.text.lower() and word.start - last.start < 0.3:
            continue
        kept.append(word)
    return kept


def whisper_options(beam_size: int, language: str | None, batch_size: int) -> dict:
    return {
        "language": language,
        "beam_size": beam_size,
        "word_timestamps": True,
        "vad_filter": False,
        "batch_size": batch_size,
    }
