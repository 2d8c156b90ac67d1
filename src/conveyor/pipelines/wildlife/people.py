"""People in camera-trap photos and frames, with detectors that ship inside OpenCV itself.

ImageNet has no "person" class, so the default classifier path misses most people; camera-trap
practice counts a file with a person as not empty (and usually wants it filtered out). Two
detectors from ``opencv-python-headless`` run beside the animal path, no weights to download:

- faces: the ``frontalface_alt2`` Haar cascade, each face confirmed by the ``frontalface_default``
  cascade (two differently trained cascades agreeing; either alone fired on coins and on the
  moon in scikit-image's sample photos); the box is grown from the face to head and shoulders;
- whole bodies: OpenCV's HOG pedestrian detector, counted only above ``HOG_MIN_WEIGHT`` (it
  fired at 0.6-1.2 on a logo, a retina scan and a rocket).

A local MegaDetector (``CONVEYOR_WILDLIFE_DETECTOR``) finds people far better; this is the
offline default. Scores are fixed per detector: neither gives a calibrated probability.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]
WORK_WIDTH = 640  # frames are scaled down to this width first (the cascades are slow at 4K)
FACE_MIN_FRACTION = 0.05  # smallest face, as a fraction of the shorter side
FACE_NEIGHBOURS = 6
FACE_SCORE = 0.8
HOG_MIN_WEIGHT = 1.5
HOG_SCORE = 0.7


@cache
def _cascade(name: str) -> Any:
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise FileNotFoundError(f"OpenCV's {name} is missing: reinstall opencv-python-headless<5")
    return cascade


@cache
def _hog() -> Any:
    import cv2

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def find_people(image: np.ndarray, with_bodies: bool = True) -> list[tuple[Box, float]]:
    """Boxes (in ``image`` pixels) and scores of the people in a BGR image: faces (grown to
    head and shoulders), then, with ``with_bodies``, HOG's upright bodies."""
    import cv2

    scale = min(1.0, WORK_WIDTH / image.shape[1])
    small = cv2.resize(image, None, fx=scale, fy=scale) if scale < 1 else image
    grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    found = [(head_and_shoulders(face, small.shape), FACE_SCORE) for face in faces(grey)]
    if with_bodies:
        found += [(box, HOG_SCORE) for box in bodies(small) if not _covered(box, found)]
    return [(tuple(v / scale for v in box), score) for box, score in found]  # type: ignore[misc]


def faces(grey: np.ndarray) -> list[Box]:
    """Faces found by one cascade and confirmed by the other."""
    side = max(24, int(min(grey.shape) * FACE_MIN_FRACTION))
    options = {"scaleFactor": 1.1, "minNeighbors": FACE_NEIGHBOURS, "minSize": (side, side)}
    found = _boxes(_cascade("haarcascade_frontalface_alt2.xml").detectMultiScale(grey, **options))
    if not found:
        return []
    confirming = _boxes(
        _cascade("haarcascade_frontalface_default.xml").detectMultiScale(grey, **options)
    )
    return [box for box in found if any(iou(box, other) > 0.3 for other in confirming)]


def bodies(image: np.ndarray) -> list[Box]:
    rects, weights = _hog().detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.1)
    return [
        (float(x), float(y), float(x + w), float(y + h))
        for (x, y, w, h), weight in zip(rects, np.ravel(weights), strict=True)
        if weight >= HOG_MIN_WEIGHT
    ]


def head_and_shoulders(face: Box, shape: tuple[int, ...]) -> Box:
    """The face box grown to the head and shoulders below it, inside the image."""
    x1, y1, x2, y2 = face
    width, height = x2 - x1, y2 - y1
    return (
        max(0.0, x1 - width),
        max(0.0, y1 - 0.4 * height),
        min(float(shape[1]), x2 + width),
        min(float(shape[0]), y2 + 2.0 * height),
    )


def iou(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _covered(box: Box, found: list[tuple[Box, float]]) -> bool:
    return any(iou(box, other) > 0.3 for other, _ in found)


def _boxes(rects: Any) -> list[Box]:
    return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in rects]
