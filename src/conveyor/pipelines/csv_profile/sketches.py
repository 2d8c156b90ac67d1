"""Aggregates that take a CSV block at a time and stay bounded, whatever the file size.

Numbers (count, min, max, mean, standard deviation) are exact: the moments of each block are
merged with Chan's formula. Duplicate rows are exact too (up to 64-bit hash collisions): a
hash per row is appended to one of 256 files on local disk, 8 bytes a row, and each file is
deduplicated on its own at the end (a 10 GB file of 45-byte rows: 1.8 GB of hashes, 7 MB a
file). Distinct values and the most common values of a text
column are exact while the column has at most ``TOP_CAPACITY`` distinct values; above that the
counter keeps the most common ones (the top values are then approximate) and the distinct count
comes from a k-minimum-values sketch (about 1% relative error at ``SKETCH_SIZE``). The
quartiles of a number column are exact up to ``SAMPLE_SIZE`` values, then those of a uniform
sample of that many values (about 1% of the ranks off).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

TOP_CAPACITY = 10_000  # distinct values counted exactly per text column
SKETCH_SIZE = 16_384  # hashes kept per text column for the distinct estimate
SAMPLE_SIZE = 10_000  # values kept per number column for its quartiles
DUPLICATE_BUCKETS = 256
_HASH_RANGE = float(2**64)


@dataclass
class Moments:
    count: int = 0
    mean: float = 0.0
    squares: float = 0.0  # sum of squared deviations from the mean
    low: float = math.inf
    high: float = -math.inf

    def add(self, values: np.ndarray) -> None:
        if not len(values):
            return
        count, mean = len(values), float(values.mean())
        squares = float(((values - mean) ** 2).sum())
        total = self.count + count
        delta = mean - self.mean
        self.squares += squares + delta * delta * self.count * count / total
        self.mean += delta * count / total
        self.count = total
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))

    def summary(self) -> dict[str, Any]:
        return {
            "type": "number",
            "min": self.low,
            "max": self.high,
            "mean": round(self.mean, 6),
            "std": round(math.sqrt(self.squares / self.count), 6),
        }


class QuantileSample:
    """A uniform sample without replacement of every value seen: the ``size`` values with the
    smallest random priorities (all of them while there are no more)."""

    def __init__(self, size: int = SAMPLE_SIZE, seed: int = 0) -> None:
        self.size = size
        self.random = np.random.default_rng(seed)
        self.values = np.empty(0)
        self.priorities = np.empty(0)
        self.seen = 0

    def add(self, values: np.ndarray) -> None:
        self.seen += len(values)
        priorities = self.random.random(len(values))
        if len(self.values) >= self.size:  # only a value under the k-th priority can enter
            entering = priorities < self.threshold
            values, priorities = values[entering], priorities[entering]
        self.values = np.concatenate([self.values, values])
        self.priorities = np.concatenate([self.priorities, priorities])
        if len(self.values) > 2 * self.size:  # cut now and then, not at every block
            self._cut()

    @property
    def threshold(self) -> float:
        return float(self.priorities.max()) if len(self.priorities) >= self.size else 1.0

    def _cut(self) -> None:
        kept = np.argpartition(self.priorities, self.size - 1)[: self.size]
        self.values, self.priorities = self.values[kept], self.priorities[kept]

    def summary(self) -> dict[str, Any]:
        if len(self.values) > self.size:
            self._cut()
        if not len(self.values):
            return {}
        low, middle, high = np.quantile(self.values, [0.25, 0.5, 0.75])
        quartiles = {
            "p25": round(float(low), 6),
            "median": round(float(middle), 6),
            "p75": round(float(high), 6),
        }
        return quartiles | ({"quartiles_approximate": True} if self.seen > self.size else {})


class DistinctSketch:
    """The ``SKETCH_SIZE`` smallest distinct 64-bit hashes seen: exact below that many values,
    an estimate of (k - 1) / (k-th smallest hash, as a fraction of the hash range) above."""

    def __init__(self, size: int = SKETCH_SIZE) -> None:
        self.size = size
        self.smallest = np.empty(0, dtype=np.uint64)

    def add(self, hashes: np.ndarray) -> None:
        merged = np.unique(np.concatenate([self.smallest, hashes.astype(np.uint64)]))
        self.smallest = merged[: self.size]

    def estimate(self) -> int:
        if len(self.smallest) < self.size:
            return len(self.smallest)
        return round((self.size - 1) / (float(self.smallest[-1]) / _HASH_RANGE))


class TextValues:
    """Counts of a text column's values, bounded at ``TOP_CAPACITY`` distinct values."""

    def __init__(self, capacity: int = TOP_CAPACITY) -> None:
        self.capacity = capacity
        self.counts: Counter[str] = Counter()
        self.sketch = DistinctSketch()
        self.trimmed = False

    def add(self, values: list[str], counts: list[int]) -> None:
        self.counts.update(dict(zip(values, counts, strict=True)))
        self.sketch.add(row_hashes(values))
        if len(self.counts) > self.capacity:
            self.counts = Counter(dict(self.counts.most_common(self.capacity // 2)))
            self.trimmed = True

    def summary(self) -> dict[str, Any]:
        distinct = self.sketch.estimate() if self.trimmed else len(self.counts)
        summary: dict[str, Any] = {
            "type": "text",
            "distinct": distinct,
            "top": [[value, count] for value, count in self.counts.most_common(3)],
        }
        return summary | ({"approximate": True} if self.trimmed else {})


def row_hashes(values: list[str]) -> np.ndarray:
    """Python's string hash (SipHash, seeded per process: a scan runs in one process)."""
    return np.fromiter(map(hash, values), dtype=np.int64, count=len(values)).view(np.uint64)


class DuplicateRows:
    """Exact duplicate count with memory bounded by one bucket: row hashes spill to disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[BinaryIO] = [
            (folder / f"rows-{n:03d}.u64").open("wb") for n in range(DUPLICATE_BUCKETS)
        ]
        self.rows = 0

    def add(self, hashes: np.ndarray) -> None:
        self.rows += len(hashes)
        buckets = (hashes >> np.uint64(56)).astype(np.intp)
        order = np.argsort(buckets, kind="stable")
        bounds = np.searchsorted(buckets[order], np.arange(DUPLICATE_BUCKETS + 1))
        for number, handle in enumerate(self.files):
            chosen = order[bounds[number] : bounds[number + 1]]
            if len(chosen):
                handle.write(hashes[chosen].tobytes())

    def count(self) -> int:
        distinct = 0
        for handle in self.files:
            handle.close()
            path = Path(handle.name)
            distinct += len(np.unique(np.fromfile(path, dtype=np.uint64)))
            os.unlink(path)
        return self.rows - distinct
