"""Per-file conclusions: empty or not, counts per group and species, most animals at once,
when there was activity, and a contact sheet of each track's best frame.

"Empty" follows the camera-trap convention (as MegaDetector's): nothing worth a look, neither
animal nor person nor vehicle. People and vehicles are counted so that users can filter them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from conveyor.pipelines.wildlife.detector import Detection, crop
from conveyor.pipelines.wildlife.taxonomy import ANIMAL_GROUPS
from conveyor.pipelines.wildlife.tracking import Track

SHEET_TILE = 200


def summarise(
    tracks: list[Track],
    detections: list[Detection],
    track_ids: list[int | None],
    best_rejected: float,
    empty_threshold: float,
) -> dict[str, Any]:
    """The file's summary as JSON-able values (see docs/wildlife.md for each field)."""
    counted = [t for t in tracks if t.score >= empty_threshold]
    empty = not counted
    if empty:
        strongest = max([best_rejected, *(t.score for t in tracks)], default=0.0)
        confidence = 1.0 - strongest
    else:
        confidence = max(t.score for t in counted)
    kept = {t.track_id for t in counted}
    return {
        "empty": empty,
        "empty_confidence": round(float(np.clip(confidence, 0.0, 1.0)), 4),
        "animals": any(t.group in ANIMAL_GROUPS for t in counted),
        "counts": dict(Counter(t.group for t in counted)),
        "species": dict(Counter(t.species for t in counted)),
        "max_animals": max_at_once(detections, track_ids, kept),
        "activity": activity(counted),
    }


def max_at_once(detections: list[Detection], track_ids: list[int | None], counted: set[int]) -> int:
    """The most animals (counted tracks of animal groups) seen in one frame."""
    per_frame: dict[int, set[int]] = defaultdict(set)
    for detection, track_id in zip(detections, track_ids, strict=True):
        if track_id in counted and detection.group in ANIMAL_GROUPS:
            per_frame[detection.frame].add(track_id)
    return max((len(ids) for ids in per_frame.values()), default=0)


def activity(tracks: list[Track]) -> dict[str, float | None]:
    """First and last second anything was seen and the seconds covered by at least one track."""
    if not tracks:
        return {"first_s": None, "last_s": None, "seconds": 0.0}
    spans = sorted((t.first_seen_s, t.last_seen_s) for t in tracks)
    covered, (start, end) = 0.0, spans[0]
    for low, high in spans[1:]:
        if low > end:
            covered, start = covered + end - start, low
        end = max(end, high)
    covered += end - start
    return {"first_s": round(spans[0][0], 3), "last_s": round(end, 3), "seconds": round(covered, 3)}


def contact_sheet(frames: list[np.ndarray], tracks: list[Track], columns: int = 4) -> np.ndarray:
    """Each track's best detection, cropped with context, labelled, in a grid (BGR image)."""
    import cv2

    tiles = []
    for track in tracks:
        picture = crop(frames[track.best_frame], track.best_box, 0.15, 0.3)
        tile = _fit(picture, SHEET_TILE)
        label = f"#{track.track_id} {track.species} {track.score:.2f}"
        cv2.rectangle(tile, (0, SHEET_TILE - 22), (SHEET_TILE, SHEET_TILE), (0, 0, 0), -1)
        cv2.putText(
            tile,
            label[:28],
            (4, SHEET_TILE - 7),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        tiles.append(tile)
    columns = max(1, min(columns, len(tiles)))
    while len(tiles) % columns:
        tiles.append(np.zeros((SHEET_TILE, SHEET_TILE, 3), np.uint8))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def _fit(picture: np.ndarray, side: int) -> np.ndarray:
    import cv2

    height, width = picture.shape[:2]
    scale = side / max(height, width, 1)
    resized = cv2.resize(picture, (max(1, round(width * scale)), max(1, round(height * scale))))
    tile = np.zeros((side, side, 3), np.uint8)
    top, left = (side - resized.shape[0]) // 2, (side - resized.shape[1]) // 2
    tile[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return tile
