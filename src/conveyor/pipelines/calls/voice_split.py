"""A third voice hidden inside a found speaker: split a speaker when its steps fall into two
well-separated groups.

The eigengap over the whole call is ruled by the most distinct voice: with a man on an 8 kHz
line and two women, the widest gap lies after two (the man, and both women together). So after
re-segmentation each speaker's 0.8 s step embeddings are taken alone, their own mean removed,
split in two by k-means, and the split is kept when the two halves stand far apart along the
line between their centres: the Fisher ratio (squared distance of the projected means over the
sum of their variances) above SPLIT_FISHER_RATIO. Measured on real voices (docs/calls.md) one
voice's halves scored 8-67 and two voices merged into one speaker 140-200, except two voices
of one recording (speaker90 and speaker91 of pyannote's sample: 21), which stay merged.
"""

from __future__ import annotations

import numpy as np

from conveyor.pipelines.calls.clustering import centred

SPLIT_FISHER_RATIO = 100.0
MIN_STEPS = 10  # a speaker with less speech (2 s) is not split
MIN_HALF_STEPS = 4  # nor into a half shorter than 0.8 s
MAX_SPLIT_STEPS = 1000  # k-means on an evenly spread subset; every step joins the nearer half


def split_merged_voices(
    embeddings: np.ndarray, labels: np.ndarray, max_speakers: int
) -> np.ndarray:
    """Step labels with each speaker whose steps separate well split in two (new labels
    after the existing ones), while the count stays within ``max_speakers``.
    ``embeddings`` are the steps' raw embeddings."""
    labels = labels.copy()
    for speaker in range(int(labels.max()) + 1):
        if int(labels.max()) + 1 >= max_speakers:
            break
        members = np.flatnonzero(labels == speaker)
        if len(members) < MIN_STEPS:
            continue
        halves = two_groups(embeddings[members])
        if halves is not None:
            labels[members[halves == 1]] = int(labels.max()) + 1
    return labels


def two_groups(embeddings: np.ndarray) -> np.ndarray | None:
    """0/1 per row when the rows split into two well-separated groups, else None."""
    from sklearn.cluster import KMeans

    points = centred(embeddings)
    chosen = np.linspace(0, len(points) - 1, min(len(points), MAX_SPLIT_STEPS)).round()
    sample = points[chosen.astype(int)]
    halves = KMeans(n_clusters=2, n_init=4, random_state=0).fit_predict(sample)
    if min(np.bincount(halves, minlength=2)) < MIN_HALF_STEPS:
        return None
    if fisher_ratio(sample, halves) <= SPLIT_FISHER_RATIO:
        return None
    centres = np.stack([sample[halves == k].mean(axis=0) for k in (0, 1)])
    nearness = points @ centres.T - (centres**2).sum(axis=1) / 2  # rows are unit length
    return np.argmax(nearness, axis=1)


def fisher_ratio(points: np.ndarray, halves: np.ndarray) -> float:
    """Separation of two groups along the line through their centres."""
    first, second = points[halves == 0], points[halves == 1]
    direction = first.mean(axis=0) - second.mean(axis=0)
    direction /= max(float(np.linalg.norm(direction)), 1e-9)
    a, b = first @ direction, second @ direction
    return float((a.mean() - b.mean()) ** 2 / max(float(a.var() + b.var()), 1e-12))
