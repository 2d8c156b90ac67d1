"""Linking detections across frames into tracks with ByteTrack (from ``supervision``).

A track's group and species are a score-weighted vote over its detections (one frame's label
can be wrong, a track's majority rarely is); its path is the box centre at every frame where it
was detected.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conveyor.pipelines.wildlife.detector import Detection

LOST_SECONDS = 2.0  # a track survives this long without a detection


@dataclass
class Track:
    track_id: int
    group: str
    species: str
    score: float  # mean detection score
    first_seen_s: float
    last_seen_s: float
    detections: int
    best_frame: int  # the frame of its highest-scoring detection
    best_box: tuple[float, float, float, float]
    path: list[tuple[float, float, float]]  # (time_s, centre x, centre y)
    species_probability: float = 0.0  # the likeliest class's probability in its best detection
    alternatives: list[list[Any]] = field(default_factory=list)  # the next likely classes

    def as_json(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "group": self.group,
            "species": self.species,
            "score": round(self.score, 4),
            "first_seen_s": round(self.first_seen_s, 3),
            "last_seen_s": round(self.last_seen_s, 3),
            "detections": self.detections,
            "best_frame": self.best_frame,
            "best_box": [round(v, 1) for v in self.best_box],
            "path": [[round(t, 3), round(x, 1), round(y, 1)] for t, x, y in self.path],
            "species_probability": round(self.species_probability, 4),
            "alternatives": self.alternatives,
        }


def assign_tracks(
    detections: list[Detection], frame_count: int, fps: float, min_score: float
) -> list[int | None]:
    """A track id (or None) for each detection, running ByteTrack over frames in order."""
    import supervision as sv

    with warnings.catch_warnings():  # supervision 0.30 says ByteTrack moves to `trackers`
        warnings.simplefilter("ignore", FutureWarning)
        tracker = sv.ByteTrack(
            track_activation_threshold=max(0.05, min_score - 0.1),
            lost_track_buffer=max(1, round(LOST_SECONDS * 30)),  # counted in 30 fps frames
            minimum_matching_threshold=0.9,  # match boxes overlapping by IoU 0.1 or more
            frame_rate=fps,
            minimum_consecutive_frames=1,
        )
    by_frame: dict[int, list[int]] = defaultdict(list)
    for position, detection in enumerate(detections):
        by_frame[detection.frame].append(position)
    assigned: list[int | None] = [None] * len(detections)
    for frame in range(frame_count):
        members = by_frame.get(frame, [])
        batch = _as_supervision(sv, [detections[i] for i in members], members)
        tracked = tracker.update_with_detections(batch)
        for position, track_id in zip(
            tracked.data.get("position", []), tracked.tracker_id, strict=False
        ):
            assigned[int(position)] = int(track_id)
    return assigned


def _as_supervision(sv: Any, detections: list[Detection], positions: list[int]) -> Any:
    if not detections:
        empty = sv.Detections.empty()
        empty.data["position"] = np.zeros(0, dtype=int)
        return empty
    return sv.Detections(
        xyxy=np.array([d.box for d in detections], dtype=np.float32),
        confidence=np.array([d.score for d in detections], dtype=np.float32),
        class_id=np.zeros(len(detections), dtype=int),
        data={"position": np.array(positions, dtype=int)},
    )


def build_tracks(
    detections: list[Detection], raw_ids: list[int | None], min_detections: int
) -> tuple[list[int | None], list[Track]]:
    """Tracks with at least ``min_detections`` detections, renumbered 1, 2, ... in order of
    first appearance, and each detection's new track id (None when its track was dropped)."""
    members: dict[int, list[Detection]] = defaultdict(list)
    for detection, track_id in zip(detections, raw_ids, strict=True):
        if track_id is not None:
            members[track_id].append(detection)
    kept = [raw for raw, group in members.items() if len(group) >= min_detections]
    kept.sort(key=lambda raw: (members[raw][0].time_s, members[raw][0].box[0]))
    number = {raw: position for position, raw in enumerate(kept, start=1)}
    tracks = [_track(number[raw], members[raw]) for raw in kept]
    return [number.get(raw) if raw is not None else None for raw in raw_ids], tracks


def _track(track_id: int, detections: list[Detection]) -> Track:
    group = _vote([(d.group, d.score) for d in detections])
    species = _vote([(d.species, d.score) for d in detections if d.group == group])
    best = max(detections, key=lambda d: d.score)
    named = max(
        (d for d in detections if d.species == species), key=lambda d: d.species_probability
    )
    return Track(
        track_id=track_id,
        group=group,
        species=species,
        score=float(np.mean([d.score for d in detections])),
        first_seen_s=detections[0].time_s,
        last_seen_s=detections[-1].time_s,
        detections=len(detections),
        best_frame=best.frame,
        best_box=best.box,
        path=[(d.time_s, (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2) for d in detections],
        species_probability=named.species_probability,
        alternatives=named.alternatives,
    )


def _vote(weighted: list[tuple[str, float]]) -> str:
    totals: dict[str, float] = defaultdict(float)
    for label, weight in weighted:
        totals[label] += weight
    return max(totals, key=lambda label: totals[label])


def image_tracks(detections: list[Detection]) -> tuple[list[int | None], list[Track]]:
    """A still image: every detection is its own one-frame track."""
    ids: list[int | None] = list(range(1, len(detections) + 1))
    return ids, [_track(number, [d]) for number, d in zip(ids, detections, strict=True)]
