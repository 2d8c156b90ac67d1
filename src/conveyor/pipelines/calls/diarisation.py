"""Who spoke when.

Stereo calls carry one party per channel, so voice activity per channel is enough. Mono calls
get voice activity (webrtcvad), one speaker embedding (resemblyzer) per sliding window over the
whole call, and a single clustering of all windows (:mod:`.clustering`: the speaker count is
chosen from the data within set bounds), so a speaker keeps one label from the first minute to
the last, however long the call; then :mod:`.resegmentation` places the speaker changes on
0.2 s steps, and :mod:`.voice_split` splits a speaker that holds two voices (a third voice
the eigengap missed). Labels are S1, S2, ... in order of first speech.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from conveyor.pipelines.calls import resegmentation
from conveyor.pipelines.calls.clustering import SpeakerBounds, centred, cluster_speakers
from conveyor.pipelines.calls.voice_split import split_merged_voices

RATE = 16000
VAD_FRAME_S = 0.03
WINDOW_S = 1.6  # resemblyzer's partial utterance length (160 mel frames)
WINDOW_STEP_S = 0.5

Region = tuple[float, float]
Embedder = Callable[[np.ndarray, Sequence[float], float], np.ndarray]


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str

    def as_list(self) -> list:
        return [round(self.start, 3), round(self.end, 3), self.speaker]


def speech_regions(
    mono: np.ndarray, aggressiveness: int = 2, bridge_s: float = 0.3, min_s: float = 0.2
) -> list[Region]:
    """Speech stretches found by webrtcvad; gaps shorter than ``bridge_s`` are bridged."""
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    frame = int(RATE * VAD_FRAME_S)
    pcm = (np.clip(mono, -1, 1) * 32767).astype("<i2")
    count = len(pcm) // frame
    loud = _frame_levels(mono, frame, count) > 1e-3
    flags = [
        bool(loud[i]) and vad.is_speech(pcm[i * frame : (i + 1) * frame].tobytes(), RATE)
        for i in range(count)
    ]
    return merge_regions(_runs(flags, VAD_FRAME_S), bridge_s, min_s)


def _frame_levels(mono: np.ndarray, frame: int, count: int) -> np.ndarray:
    blocks = mono[: count * frame].reshape(count, frame).astype(np.float64)
    return np.sqrt((blocks**2).mean(axis=1))


def _runs(flags: Sequence[bool], step: float) -> list[Region]:
    regions, start = [], None
    for index, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            regions.append((start * step, index * step))
            start = None
    return regions


def merge_regions(regions: Sequence[Region], bridge_s: float, min_s: float) -> list[Region]:
    merged: list[Region] = []
    for start, end in regions:
        if merged and start - merged[-1][1] < bridge_s:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [(s, e) for s, e in merged if e - s >= min_s]


def stereo_turns(samples: np.ndarray) -> tuple[list[Turn], dict[str, str]]:
    """One speaker per channel: channel c's speech regions become turns of that speaker.
    Returns the turns and ``{channel: speaker}`` (a silent channel is named last)."""
    turns = [
        Turn(start, end, f"C{channel}")
        for channel in range(samples.shape[0])
        for start, end in speech_regions(samples[channel])
    ]
    named = relabel_by_first_speech(sorted(turns, key=lambda t: t.start))
    mapping = {
        t.speaker[1:]: n.speaker
        for t, n in zip(sorted(turns, key=lambda t: t.start), named, strict=True)
    }
    for channel in range(samples.shape[0]):
        mapping.setdefault(str(channel), f"S{len(mapping) + 1}")
    return named, mapping


def window_centres(regions: Sequence[Region]) -> list[float]:
    """Centres of the embedding windows: every WINDOW_STEP_S inside each speech region, and
    one window in the middle of a region shorter than a window."""
    centres: list[float] = []
    half = WINDOW_S / 2
    for start, end in regions:
        if end - start <= WINDOW_S:
            centres.append((start + end) / 2)
            continue
        centres.extend(np.arange(start + half, end - half + 1e-6, WINDOW_STEP_S).tolist())
    return centres


def label_steps(steps: resegmentation.Steps, labels: np.ndarray) -> list[Turn]:
    """Steps joined into turns (labels K0, K1, ... until :func:`relabel_by_first_speech`)."""
    return _join(
        [
            (float(c - w / 2), float(c + w / 2), int(label))
            for c, w, label in zip(steps.centres, steps.widths, labels, strict=True)
        ]
    )


def _join(steps: Sequence[tuple[float, float, int]]) -> list[Turn]:
    turns: list[Turn] = []
    for start, end, label in steps:
        speaker = f"K{label}"
        if turns and turns[-1].speaker == speaker and start - turns[-1].end < 0.35:
            turns[-1] = Turn(turns[-1].start, end, speaker)
        else:
            turns.append(Turn(start, end, speaker))
    return turns


def relabel_by_first_speech(turns: Sequence[Turn]) -> list[Turn]:
    names = _names_by_first_speech(turns)
    return [Turn(t.start, t.end, names[t.speaker]) for t in turns]


def mono_turns(mono: np.ndarray, embed: Embedder, bounds: SpeakerBounds) -> list[Turn]:
    """Diarise a single-channel call: VAD, 1.6 s embeddings over the whole call, one
    clustering with the speaker count chosen within ``bounds``, then re-segmentation on short
    windows and a split of any speaker whose steps hold two voices (:mod:`.voice_split`).
    ``embed(mono, centres, window_s)`` returns one unit-length embedding per centre."""
    regions = speech_regions(mono)
    if not regions:
        return []
    steps, _, labels = step_speakers(mono, regions, embed, bounds)
    return relabel_by_first_speech(label_steps(steps, labels))


def step_speakers(
    mono: np.ndarray, regions: Sequence[Region], embed: Embedder, bounds: SpeakerBounds
) -> tuple[resegmentation.Steps, np.ndarray, np.ndarray]:
    """The 0.2 s steps over ``regions``, their raw short-window embeddings and a speaker
    number for each."""
    centres = window_centres(regions)
    labels = cluster_speakers(embed(mono, centres, WINDOW_S), bounds)
    steps = resegmentation.Steps.over(regions)
    raw = embed(mono, steps.centres.tolist(), resegmentation.SHORT_WINDOW_S)
    points = centred(raw)
    start = resegmentation.initial_labels(steps, centres, labels)
    final = resegmentation.resegment(points, steps, start, int(labels.max()) + 1)
    split = split_merged_voices(raw, final, bounds.max_speakers)
    if split.max() > final.max():
        final = resegmentation.resegment(points, steps, split, int(split.max()) + 1)
    return steps, raw, final


def _names_by_first_speech(turns: Sequence[Turn]) -> dict[str, str]:
    names: dict[str, str] = {}
    for turn in sorted(turns, key=lambda t: t.start):
        names.setdefault(turn.speaker, f"S{len(names) + 1}")
    return names
