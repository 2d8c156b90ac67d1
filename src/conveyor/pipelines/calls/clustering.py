"""Speaker clustering with the count chosen from the data, inside set bounds.

Two real voices on one line can be closer to each other (cosine ~0.7 with resemblyzer) than a
fixed distance threshold allows, so the count is not read off a threshold. Instead:

1. the call's mean embedding is removed (what all windows share: the line, the room, the
   codec), which spreads the voices apart;
2. the affinity of two windows is ``((1 + cosine) / 2) ** AFFINITY_POWER``, and the number of
   speakers is where the widest gap lies between the smallest eigenvalues of the normalised
   graph Laplacian (the eigengap), moved into ``[min_speakers, max_speakers]``;
3. k-means on the rows of the first eigenvectors gives the labels (spectral clustering).

Measured on real voices (docs/calls.md) this found two speakers in every two-person call,
where a k-nearest-neighbour pruned affinity (NME-SC) split short calls into many and
silhouette-chosen agglomerative clustering found five in a 30 s conversation.
Pure numpy (plus scikit-learn's k-means), no model: tested on planted clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_WINDOWS_FOR_SPECTRAL = 4
SEARCHED_SPEAKERS = 10  # the eigengap is looked for up to here, then moved into the bounds
AFFINITY_POWER = 2.0  # sharpens the affinity: close windows count much more than far ones
# The eigendecomposition grows with the cube of the windows (a two-hour call has ~14000): past
# this many, an evenly spread subset is clustered and every window joins its nearest centre.
MAX_CLUSTERED = 1500
DENSE_LIMIT = 300  # windows up to which all eigenpairs are computed at once


@dataclass(frozen=True)
class SpeakerBounds:
    """How many speakers a recording may have; ``min_speakers == max_speakers`` fixes it."""

    min_speakers: int = 1
    max_speakers: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.min_speakers <= self.max_speakers:
            raise ValueError(
                f"speaker bounds {self.min_speakers}..{self.max_speakers}: need "
                "1 <= min_speakers <= max_speakers"
            )


def centred(embeddings: np.ndarray) -> np.ndarray:
    """Unit-length embeddings after removing their mean (what every window shares)."""
    shifted = embeddings - embeddings.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(shifted, axis=1, keepdims=True)
    return shifted / np.maximum(norms, 1e-9)


def cluster_speakers(embeddings: np.ndarray, bounds: SpeakerBounds) -> np.ndarray:
    """One integer label per embedding, with between ``min_speakers`` and ``max_speakers``
    distinct labels (fewer only when there are fewer embeddings)."""
    count = len(embeddings)
    high = min(bounds.max_speakers, count)
    low = min(bounds.min_speakers, high)
    if high <= 1:
        return np.zeros(count, dtype=int)
    points = centred(embeddings)
    if count < MIN_WINDOWS_FOR_SPECTRAL:
        return _kmeans(points, low)
    if count > MAX_CLUSTERED:
        chosen = np.linspace(0, count - 1, MAX_CLUSTERED).round().astype(int)
        return nearest_centre(points, points[chosen], _spectral(points[chosen], low, high))
    return _spectral(points, low, high)


def _spectral(points: np.ndarray, low: int, high: int) -> np.ndarray:
    wanted = min(len(points) - 1, max(high, SEARCHED_SPEAKERS) + 1)  # only the smallest count
    values, vectors = smallest_eigenpairs(normalised_laplacian(points), wanted)
    speakers = eigengap_count(values, low, high)
    rows = vectors[:, :speakers]
    rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)
    return _kmeans(rows, speakers)


def smallest_eigenpairs(laplacian: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` smallest eigenvalues (ascending) and their vectors. Past DENSE_LIMIT rows
    Lanczos iteration on ``I - L`` (its largest) is several times faster than a full solve."""
    size = len(laplacian)
    if size <= DENSE_LIMIT:
        values, vectors = np.linalg.eigh(laplacian)
        return values[:count], vectors[:, :count]
    from scipy.sparse.linalg import eigsh

    start = np.random.default_rng(0).uniform(0.5, 1.0, size)  # fixed: the same call, same labels
    values, vectors = eigsh(np.eye(size) - laplacian, k=count, which="LA", v0=start)
    order = np.argsort(1.0 - values)
    return (1.0 - values)[order], vectors[:, order]


def nearest_centre(points: np.ndarray, sample: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each point's label: the clustered sample's centre (mean direction) it is closest to."""
    speakers = int(labels.max()) + 1
    centres = np.stack([sample[labels == k].mean(axis=0) for k in range(speakers)])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-9)
    return np.argmax(points @ centres.T, axis=1)


def normalised_laplacian(points: np.ndarray) -> np.ndarray:
    """``I - D^-1/2 A D^-1/2`` over the sharpened cosine affinity ``A`` of unit rows."""
    affinity = ((1.0 + np.clip(points @ points.T, -1.0, 1.0)) / 2.0) ** AFFINITY_POWER
    np.fill_diagonal(affinity, 0.0)
    scale = 1.0 / np.sqrt(np.maximum(affinity.sum(axis=1), 1e-12))
    return np.eye(len(points)) - affinity * scale[:, None] * scale[None, :]


def eigengap_count(values: np.ndarray, low: int, high: int) -> int:
    """The number of clusters at the widest gap between the sorted smallest eigenvalues,
    moved into ``[low, high]`` (more voices than ``high`` keep ``high``)."""
    gaps = np.diff(values[: max(high, SEARCHED_SPEAKERS) + 1])
    return min(max(int(np.argmax(gaps)) + 1, low), high)


def _kmeans(points: np.ndarray, clusters: int) -> np.ndarray:
    if clusters <= 1:
        return np.zeros(len(points), dtype=int)
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=clusters, n_init=10, random_state=0).fit_predict(points)
