"""Re-segmentation: who speaks at each short step, once the voices are known.

The clustering windows are 1.6 s long, so a reply shorter than that ("yes", "okay") is
averaged into its neighbours and a speaker change is only placed to within a window. Here
short windows (0.8 s every 0.2 s) are embedded, every step starts with the label of the
clustering windows around it, each speaker's centre is taken from those short windows, and a
Viterbi pass picks the speaker per step: the step's similarity to each centre, minus a cost
per change of speaker (smaller across a pause, where turns change). Two passes.

Overlapping speech is not detected: a step whose embedding lies nearer the blend of two
voices than either (tried) marked none of the eight real overlapping steps of the pyannote
sample and eleven steps of a call with no overlap at all; a step unusually near the second-best
speaker's centre, and louder than its region, found 18 % of planted overlaps (distinct voices
only) at precision 0.83 (benchmarks/calls_overlap_detector.py, docs/calls.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from conveyor.pipelines.calls.clustering import centred

STEP_S = 0.2
SHORT_WINDOW_S = 0.8
CHANGE_COST = 0.6  # in units of cosine similarity per change of speaker inside speech
PAUSE_CHANGE_COST = 0.15  # across a pause between speech regions
PASSES = 2

Region = tuple[float, float]
ShortEmbedder = Callable[[np.ndarray, Sequence[float], float], np.ndarray]


@dataclass(frozen=True)
class Steps:
    """Short steps over the speech regions: their centres and the region each lies in."""

    centres: np.ndarray
    widths: np.ndarray
    regions: np.ndarray  # index of the speech region of each step

    @classmethod
    def over(cls, regions: Sequence[Region]) -> Steps:
        centres: list[float] = []
        widths: list[float] = []
        owners: list[int] = []
        for index, (start, end) in enumerate(regions):
            count = max(1, round((end - start) / STEP_S))
            width = (end - start) / count
            centres.extend(start + width * (k + 0.5) for k in range(count))
            widths.extend([width] * count)
            owners.extend([index] * count)
        return cls(np.asarray(centres), np.asarray(widths), np.asarray(owners, dtype=int))


def initial_labels(steps: Steps, centres: Sequence[float], labels: np.ndarray) -> np.ndarray:
    """Each step takes the label of the nearest clustering window (found by bisection: a
    two-hour call has ~36000 steps and ~14000 windows, too many for a distance matrix)."""
    window_centres = np.asarray(centres)  # ascending, as the speech regions are
    if len(window_centres) == 1:
        return np.full(len(steps.centres), labels[0])
    right = np.clip(np.searchsorted(window_centres, steps.centres), 1, len(window_centres) - 1)
    left = right - 1
    closer_left = steps.centres - window_centres[left] <= window_centres[right] - steps.centres
    return labels[np.where(closer_left, left, right)]


def speaker_centres(points: np.ndarray, labels: np.ndarray, speakers: int) -> np.ndarray:
    """Unit-length mean of each speaker's steps (a speaker with no step keeps a zero row)."""
    rows = np.zeros((speakers, points.shape[1]))
    for speaker in range(speakers):
        members = points[labels == speaker]
        if len(members):
            mean = members.mean(axis=0)
            rows[speaker] = mean / max(float(np.linalg.norm(mean)), 1e-9)
    return rows


def viterbi(scores: np.ndarray, change_costs: np.ndarray) -> np.ndarray:
    """The label path maximising the summed scores minus ``change_costs[t]`` for a change of
    label between step t-1 and t (``scores`` is steps x speakers)."""
    count, speakers = scores.shape
    if count == 0:
        return np.zeros(0, dtype=int)
    total = scores[0].copy()
    back = np.zeros((count, speakers), dtype=int)
    for t in range(1, count):
        moves = total[None, :] - change_costs[t] * (1 - np.eye(speakers))
        back[t] = np.argmax(moves, axis=1)
        total = moves[np.arange(speakers), back[t]] + scores[t]
    path = np.zeros(count, dtype=int)
    path[-1] = int(np.argmax(total))
    for t in range(count - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def change_costs(steps: Steps) -> np.ndarray:
    new_region = np.concatenate([[True], steps.regions[1:] != steps.regions[:-1]])
    return np.where(new_region, PAUSE_CHANGE_COST, CHANGE_COST)


def resegment(points: np.ndarray, steps: Steps, labels: np.ndarray, speakers: int) -> np.ndarray:
    """Labels per step after PASSES rounds of centres-then-Viterbi. ``points`` are the
    steps' short-window embeddings after :func:`centred`."""
    costs = change_costs(steps)
    for _ in range(PASSES):
        scores = points @ speaker_centres(points, labels, speakers).T
        labels = viterbi(scores, costs)
    return labels


def short_window_points(mono: np.ndarray, steps: Steps, embed: ShortEmbedder) -> np.ndarray:
    """The steps' short-window embeddings, call mean removed."""
    return centred(embed(mono, steps.centres.tolist(), SHORT_WINDOW_S))
