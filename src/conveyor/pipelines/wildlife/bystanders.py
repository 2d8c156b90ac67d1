"""People and vehicles, found beside the animal path (camera-trap practice counts them as not
empty, and users filter them out).

Two finders behind one interface, :class:`Finder`:

- :class:`CocoFinder`, the default when its weights are installed: YOLOv3-tiny trained on COCO
  (:mod:`.coco`), people and vehicles (car, truck, bus, motorbike, bicycle, train), ~0.1 s a
  frame, so a clip is searched on every second analysed frame (at most 60). On a photo the
  face cascades of :mod:`.people` run too: YOLOv3-tiny misses some close-up portraits;
- :class:`OpenCVPeopleFinder`, the fallback: the face cascades and HOG pedestrian detector that
  ship inside OpenCV (:mod:`.people`), people only, ~0.3 s a frame, every fifth frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from conveyor.pipelines.wildlife import coco, people

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Sighting:
    box: Box
    group: str  # "person" or "vehicle"
    species: str  # what the finder calls it: person, car, truck, ...
    score: float


class Finder(Protocol):
    name: str
    every: int  # a clip is searched on every n-th analysed frame...
    most: int  # ...but on at most this many frames

    def find(self, image: np.ndarray, photo: bool = False) -> list[Sighting]: ...


class CocoFinder:
    every = 2
    most = 60

    def __init__(self, detector: coco.CocoDetector) -> None:
        self.detector = detector
        self.name = detector.name

    def find(self, image: np.ndarray, photo: bool = False) -> list[Sighting]:
        found = [Sighting(f.box, f.group, f.name, f.score) for f in self.detector.find(image)]
        if not photo:
            return found
        persons = [s.box for s in found if s.group == "person"]
        faces = people.find_people(image, with_bodies=False)
        return found + [
            Sighting(box, "person", "person", score)
            for box, score in faces
            if not any(people.iou(box, other) > 0 for other in persons)
        ]


class OpenCVPeopleFinder:
    name = "opencv-faces+hog"
    every = 5
    most = 20

    def find(self, image: np.ndarray, photo: bool = False) -> list[Sighting]:
        found = people.find_people(image)
        return [Sighting(box, "person", "person", score) for box, score in found]


def choose(coco_folder: Path | None, threshold: float, threads: int) -> Finder:
    """The COCO detector (the one ``coco_folder`` names, else the packaged one), or OpenCV's
    people detectors when no COCO weights are installed."""
    detector = coco.from_settings(coco_folder, threshold, threads)
    return OpenCVPeopleFinder() if detector is None else CocoFinder(detector)


def frames_to_search(count: int, finder: Finder) -> list[int]:
    """Every ``finder.every``-th frame; when that would be over ``finder.most``, pairs of
    neighbouring frames spread evenly, so that whatever one frame shows is seen twice (a track
    needs two detections)."""
    every = list(range(0, count, finder.every))
    if len(every) <= finder.most:
        return every
    anchors = np.linspace(0, count - 2, finder.most // 2).round().astype(int)
    return sorted({*anchors.tolist(), *(anchors + 1).tolist()})
