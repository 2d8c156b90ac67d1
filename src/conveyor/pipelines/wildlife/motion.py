"""Moving-region proposals from a fixed camera: background modelling with OpenCV.

Camera traps fire *because* an animal is there, so the animal is often in the very first frame
and a forward-only background model (MOG2, KNN) would learn it as background. The background
here is the per-pixel median of frames sampled across a window around each frame (the whole
clip for short clips), which does not depend on the order of frames. Each frame is first
matched to the background's brightness (clouds, dusk, auto-exposure), its difference is
thresholded above the noise level, and a morphological opening removes thin swaying blades
and speckle before nearby blobs are merged into regions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORK_WIDTH = 320  # motion is measured on frames this wide
BACKGROUND_SAMPLES = 25  # frames whose median makes a background
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class MotionSettings:
    threshold: float = 28.0  # grey levels of change that count, at least
    min_area_fraction: float = 0.002  # smallest region, as a fraction of the frame
    max_regions: int = 6  # biggest regions kept per frame
    window_frames: int = 100  # frames around a frame whose median is its background
    merge_fraction: float = 0.04  # regions closer than this fraction of the width are merged


def propose_regions(frames: list[np.ndarray], settings: MotionSettings) -> list[list[Box]]:
    """For each frame (BGR uint8, all the same size) the boxes of regions that moved, in the
    frame's pixel coordinates, biggest first. A single frame has no motion: no boxes."""
    if len(frames) < 2:
        return [[] for _ in frames]
    grey, scale = _work_frames(frames)
    regions = []
    medians: dict[tuple[int, ...], np.ndarray] = {}  # windows overlap: reuse their medians
    for index, frame in enumerate(grey):
        chosen = _window(len(grey), index, settings.window_frames)
        if chosen not in medians:
            medians = {chosen: np.median(grey[list(chosen)], axis=0)}
        background = medians[chosen]
        mask = _moving_mask(frame, background, settings.threshold)
        reach = settings.merge_fraction * mask.shape[1]
        boxes = merge_nearby(_regions(mask, settings), reach)[: settings.max_regions]
        regions.append([tuple(v / scale for v in box) for box in boxes])
    return regions


def _work_frames(frames: list[np.ndarray]) -> tuple[np.ndarray, float]:
    import cv2

    height, width = frames[0].shape[:2]
    scale = min(1.0, WORK_WIDTH / width)
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    grey = [
        cv2.GaussianBlur(
            cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), size, interpolation=cv2.INTER_AREA),
            (5, 5),
            0,
        )
        for f in frames
    ]
    return np.stack(grey).astype(np.float32), size[0] / width


def _window(count: int, index: int, window: int) -> tuple[int, ...]:
    """Indices of the frames whose median is the background of frame ``index``."""
    low = max(0, min(index - window // 2, count - window))
    high = min(count, low + window)
    # Windows move in steps of a tenth, so consecutive frames share one median.
    low -= low % max(1, window // 10)
    wanted = min(BACKGROUND_SAMPLES, high - low)
    return tuple(np.unique(np.linspace(low, high - 1, wanted).astype(int)).tolist())


def _moving_mask(frame: np.ndarray, background: np.ndarray, threshold: float) -> np.ndarray:
    import cv2

    gain = (float(np.median(background)) + 1.0) / (float(np.median(frame)) + 1.0)
    difference = np.abs(frame * gain - background)
    difference -= float(np.median(difference))  # what is left of a global change
    spread = 1.4826 * float(np.median(np.abs(difference)))
    mask = (difference > max(threshold, 6.0 * spread)).astype(np.uint8)
    opening = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, opening)
    merge = max(5, mask.shape[1] // 40) | 1
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (merge, merge)))


def _regions(mask: np.ndarray, settings: MotionSettings) -> list[Box]:
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    least = settings.min_area_fraction * mask.shape[0] * mask.shape[1]
    found = [(int(s[cv2.CC_STAT_AREA]), s) for s in stats[1:count] if s[cv2.CC_STAT_AREA] >= least]
    found.sort(key=lambda pair: -pair[0])
    return [(float(s[0]), float(s[1]), float(s[0] + s[2]), float(s[1] + s[3])) for _, s in found]


def merge_nearby(boxes: list[Box], reach: float, margin: float = 0.15) -> list[Box]:
    """Merge boxes that touch once grown by ``margin`` of their size plus ``reach`` pixels
    (moving parts of one animal: head, tail, legs), until none do; biggest first."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                if _touch(_grow(merged[i], margin, reach), _grow(merged[j], margin, reach)):
                    a, b = merged[i], merged[j]
                    merged[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return sorted(merged, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def _grow(box: Box, margin: float, reach: float) -> Box:
    dx, dy = (box[2] - box[0]) * margin + reach / 2, (box[3] - box[1]) * margin + reach / 2
    return (box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy)


def _touch(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
