"""Detectors: boxes with a group (bird, mammal, ..., person, vehicle), a species and a score.

Two implementations behind one interface, :class:`Detector`:

- :class:`MotionClassifierDetector` (the offline default, nothing to download): moving regions
  from :mod:`.motion`, each labelled by the ImageNet classifier on a padded crop; still images
  are classified whole and in overlapping windows; people and vehicles are found beside that
  (:mod:`.bystanders`: YOLOv3-tiny on COCO when installed, else OpenCV's people detectors),
  since ImageNet has no person class.
- :class:`OnnxObjectDetector`: a local YOLO-format ONNX detector such as a MegaDetector v5/v6
  export (classes animal, person, vehicle), named by ``CONVEYOR_WILDLIFE_DETECTOR``; animal
  boxes get their group and species from the classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from conveyor.pipelines.wildlife import bystanders, motion, people, taxonomy
from conveyor.pipelines.wildlife.classifier import Classifier

Box = tuple[float, float, float, float]
CONTEXT = 0.2  # crops include this much of the box's size around it on each side
MIN_CROP = 0.45  # crops are at least this fraction of the frame's shorter side
STILL_KEY_FRAMES = 3  # frames looked at as photos when nothing moved in a clip
STILL_SCORE = 0.6  # how sure those looks must be: more than for a moving region


@dataclass
class Detection:
    frame: int
    time_s: float
    box: Box
    group: str
    species: str
    score: float
    species_probability: float = 0.0  # the likeliest class's probability (named or not)
    alternatives: list[list[Any]] = field(default_factory=list)  # [[class, probability], ...]

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["box"] = [round(v, 1) for v in self.box]
        values["score"] = round(self.score, 4)
        values["time_s"] = round(self.time_s, 3)
        return values

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Detection:
        return cls(**{**values, "box": tuple(values["box"])})


class Detector(Protocol):
    name: str
    version: str

    def detect_video(self, frames: list[np.ndarray], times: list[float]) -> list[Detection]: ...

    def detect_image(self, image: np.ndarray) -> list[Detection]: ...


def crop(
    frame: np.ndarray, box: Box, context: float = CONTEXT, least: float = MIN_CROP
) -> np.ndarray:
    """The box grown by ``context`` and towards a square (how ImageNet photos frame animals),
    at least ``least`` of the frame's shorter side (a moving beak or leg needs its body)."""
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = box
    side = max(max(x2 - x1, y2 - y1) * (1 + 2 * context), least * min(width, height))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, right = int(max(0, cx - side / 2)), int(min(width, cx + side / 2))
    top, bottom = int(max(0, cy - side / 2)), int(min(height, cy + side / 2))
    return frame[top : max(bottom, top + 1), left : max(right, left + 1)]


def label_crops(
    classifier: Classifier, crops: list[np.ndarray], species_threshold: float
) -> list[taxonomy.Label]:
    return [taxonomy.label_of(row, species_threshold) for row in classifier.probabilities(crops)]


def labelled(frame: int, time_s: float, box: Box, label: taxonomy.Label) -> Detection:
    return Detection(
        frame,
        time_s,
        box,
        label.group,
        label.species,
        label.score,
        label.species_probability,
        label.alternatives,
    )


class MotionClassifierDetector:
    """Motion proposals labelled by the ImageNet classifier."""

    version = "1"

    def __init__(
        self,
        classifier: Classifier,
        settings: motion.MotionSettings,
        min_score: float,
        relabel_every: int = 3,
        species_threshold: float = taxonomy.SPECIES_THRESHOLD,
        finder: bystanders.Finder | None = None,
    ) -> None:
        self.finder = finder or bystanders.OpenCVPeopleFinder()
        self.name = f"motion+efficientnet-lite0+{self.finder.name}"
        self.classifier = classifier
        self.motion = settings
        self.min_score = min_score
        self.relabel_every = relabel_every
        self.species_threshold = species_threshold
        self.best_rejected = 0.0  # highest score of a region that did not count

    def detect_video(self, frames: list[np.ndarray], times: list[float]) -> list[Detection]:
        regions = motion.propose_regions(frames, self.motion)
        sources = label_sources(regions, self.relabel_every)
        wanted = sorted({source for row in sources for source in row})
        crops = [crop(frames[frame], regions[frame][index]) for frame, index in wanted]
        found = label_crops(self.classifier, crops, self.species_threshold)
        labels = dict(zip(wanted, found, strict=True))
        detections = []
        for frame, boxes in enumerate(regions):
            for box, source in zip(boxes, sources[frame], strict=True):
                label = labels[source]
                if label.score >= self.min_score:
                    detections.append(labelled(frame, times[frame], box, label))
                else:
                    self.best_rejected = max(self.best_rejected, label.score)
        found = detections or self._still_animal(frames, times)
        return with_bystanders(found, frames, times, self.finder)

    def _still_animal(self, frames: list[np.ndarray], times: list[float]) -> list[Detection]:
        """Nothing moved: look at a few key frames as photos. An animal found with at least
        ``STILL_SCORE`` in most of them, in overlapping places, stood still the whole clip."""
        keys = sorted(set(np.linspace(0, len(frames) - 1, STILL_KEY_FRAMES).astype(int)))
        views = [self.classify_image(frames[index]) for index in keys]
        best = [max(found, key=lambda d: d.score) for found in views if found]
        strong = [d for d in best if d.score >= STILL_SCORE]
        if len(strong) * 2 <= len(keys):
            return []
        group = max({d.group for d in strong}, key=lambda g: sum(d.group == g for d in strong))
        agreeing = [d for d in strong if d.group == group]
        anchor = max(agreeing, key=lambda d: d.score)
        if sum(people.iou(d.box, anchor.box) > 0 for d in agreeing) * 2 <= len(keys):
            return []
        score = float(np.mean([d.score for d in agreeing]))
        return [
            Detection(
                index,
                times[index],
                anchor.box,
                group,
                anchor.species,
                score,
                anchor.species_probability,
                anchor.alternatives,
            )
            for index in range(len(frames))
        ]

    def detect_image(self, image: np.ndarray) -> list[Detection]:
        return with_bystanders(self.classify_image(image), [image], [0.0], self.finder, True)

    def classify_image(self, image: np.ndarray) -> list[Detection]:
        """Windows first (their union per group and touching cluster is one animal); the whole
        image only when no window shows anything."""
        whole = (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
        boxes = [whole, *sliding_windows(image.shape[1], image.shape[0])]
        crops = [crop(image, box, 0.0, 0.0) for box in boxes]
        labels = label_crops(self.classifier, crops, self.species_threshold)
        found = []
        for box, label in zip(boxes, labels, strict=True):
            if label.score >= self.min_score:
                found.append(labelled(0, 0.0, box, label))
            else:
                self.best_rejected = max(self.best_rejected, label.score)
        windows = merge_touching([d for d in found if d.box != whole])
        return windows or [d for d in found if d.box == whole]


def with_bystanders(
    detections: list[Detection],
    frames: list[np.ndarray],
    times: list[float],
    finder: bystanders.Finder,
    photo: bool = False,
) -> list[Detection]:
    """``detections`` plus the people and vehicles ``finder`` sees on the frames it searches
    (:func:`.bystanders.frames_to_search`), except where one of that group is already."""
    added = []
    for frame in bystanders.frames_to_search(len(frames), finder):
        for seen in finder.find(frames[frame], photo):
            known = [d.box for d in detections if d.frame == frame and d.group == seen.group]
            if not any(people.iou(seen.box, other) > 0.3 for other in known):
                box, score = seen.box, seen.score  # the class score is the species' too
                added.append(
                    Detection(frame, times[frame], box, seen.group, seen.species, score, score)
                )
    return sorted([*detections, *added], key=lambda d: d.frame)


def label_sources(
    regions: list[list[Box]], relabel_every: int, overlap: float = 0.5
) -> list[list[tuple[int, int]]]:
    """For each region, the (frame, index) of the region whose classification it uses.

    A region that overlaps (IoU >= ``overlap``) a region of the previous frame reuses that
    region's label while the label is younger than ``relabel_every`` frames: a slowly moving
    animal is classified every few frames, not in every one (the classifier is most of the
    detect step's time). ``relabel_every=1`` classifies every region.
    """
    sources: list[list[tuple[int, int]]] = []
    for frame, boxes in enumerate(regions):
        row = []
        for index, box in enumerate(boxes):
            source = (frame, index)
            if frame > 0:
                previous = [
                    (people.iou(box, other), sources[frame - 1][position])
                    for position, other in enumerate(regions[frame - 1])
                ]
                best = max(previous, default=(0.0, source))
                if best[0] >= overlap and frame - best[1][0] < relabel_every:
                    source = best[1]
            row.append(source)
        sources.append(row)
    return sources


def sliding_windows(width: int, height: int, fraction: float = 0.5) -> list[Box]:
    """Windows of ``fraction`` of the image, overlapping by half: 3x3 for one half."""
    window_w, window_h = width * fraction, height * fraction
    steps = round(1 / fraction) * 2 - 1
    boxes = []
    for row in range(steps):
        for column in range(steps):
            x, y = column * window_w / 2, row * window_h / 2
            boxes.append((x, y, x + window_w, y + window_h))
    return boxes


def merge_touching(detections: list[Detection]) -> list[Detection]:
    """One detection per cluster of overlapping boxes of one group: the union box, labelled
    like its best member. Overlapping windows that all see an animal see the same animal."""
    clusters: list[list[Detection]] = []
    for detection in sorted(detections, key=lambda d: -d.score):
        joined = [c for c in clusters if c[0].group == detection.group and _overlaps(c, detection)]
        for cluster in joined[1:]:
            joined[0].extend(cluster)
            clusters.remove(cluster)
        if joined:
            joined[0].append(detection)
        else:
            clusters.append([detection])
    return [_union(cluster) for cluster in clusters]


def _overlaps(cluster: list[Detection], detection: Detection) -> bool:
    a = detection.box
    return any(
        a[0] < b.box[2] and b.box[0] < a[2] and a[1] < b.box[3] and b.box[1] < a[3] for b in cluster
    )


def _union(cluster: list[Detection]) -> Detection:
    best = cluster[0]
    box = (
        min(d.box[0] for d in cluster),
        min(d.box[1] for d in cluster),
        max(d.box[2] for d in cluster),
        max(d.box[3] for d in cluster),
    )
    return Detection(
        best.frame,
        best.time_s,
        box,
        best.group,
        best.species,
        best.score,
        best.species_probability,
        best.alternatives,
    )


# --- a local ONNX object detector (MegaDetector v5/v6 and other YOLO exports) ---


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio and pad to size x size (grey 114, as YOLO trains)."""
    import cv2

    height, width = image.shape[:2]
    scale = min(size / width, size / height)
    new_w, new_h = round(width * scale), round(height * scale)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    canvas = np.full((size, size, 3), 114, np.uint8)
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas, scale, (left, top)


def decode_yolo(
    output: np.ndarray,
    class_count: int,
    threshold: float,
    scale: float,
    pad: tuple[float, float],
    image_size: tuple[int, int],
    iou_threshold: float = 0.45,
) -> list[tuple[Box, int, float]]:
    """Boxes, class ids and scores from one image's YOLO output, in original image pixels.

    Accepts YOLOv5 rows ``(cx, cy, w, h, objectness, class scores...)`` (MegaDetector v5) and
    YOLOv8-style ``(4 + classes, anchors)`` without objectness (MegaDetector v6), batch
    dimension optional. Non-maximum suppression is per class.
    """
    import cv2

    rows = output[0] if output.ndim == 3 else output
    has_objectness = rows.shape[1] == 5 + class_count
    if not has_objectness and rows.shape[0] == 4 + class_count:  # (4 + classes, anchors)
        rows = rows.T
    elif not has_objectness:
        raise ValueError(
            f"detector output of shape {output.shape} fits neither YOLOv5 (anchors, 5 + "
            f"{class_count}) nor YOLOv8 (4 + {class_count}, anchors); check "
            "CONVEYOR_WILDLIFE_DETECTOR_CLASSES."
        )
    class_scores = rows[:, 5:] * rows[:, 4:5] if has_objectness else rows[:, 4:]
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), class_ids]
    keep = scores >= threshold
    rows, class_ids, scores = rows[keep], class_ids[keep], scores[keep]
    width, height = image_size
    boxes = []
    for cx, cy, w, h in rows[:, :4]:
        x1 = np.clip((cx - w / 2 - pad[0]) / scale, 0, width)
        y1 = np.clip((cy - h / 2 - pad[1]) / scale, 0, height)
        x2 = np.clip((cx + w / 2 - pad[0]) / scale, 0, width)
        y2 = np.clip((cy + h / 2 - pad[1]) / scale, 0, height)
        boxes.append((float(x1), float(y1), float(x2), float(y2)))
    found: list[tuple[Box, int, float]] = []
    for class_id in sorted(set(class_ids.tolist())):
        members = np.flatnonzero(class_ids == class_id)
        rects = [
            [boxes[i][0], boxes[i][1], boxes[i][2] - boxes[i][0], boxes[i][3] - boxes[i][1]]
            for i in members
        ]
        chosen = cv2.dnn.NMSBoxes(rects, scores[members].tolist(), threshold, iou_threshold)
        for position in np.asarray(chosen).reshape(-1):
            index = members[int(position)]
            found.append((boxes[index], int(class_id), float(scores[index])))
    return sorted(found, key=lambda item: -item[2])


class OnnxObjectDetector:
    """A YOLO-format ONNX detector run with ONNX Runtime (CUDA when Ray gives a GPU)."""

    def __init__(
        self,
        model_file: Path,
        class_names: Sequence[str],
        classifier: Classifier,
        threshold: float,
        device: str = "cpu",
        species_threshold: float = taxonomy.SPECIES_THRESHOLD,
    ) -> None:
        self.species_threshold = species_threshold
        self.session = onnx_session(str(model_file), device)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        side = model_input.shape[-1]
        self.size = side if isinstance(side, int) else 640
        self.class_names = list(class_names)
        self.classifier = classifier
        self.threshold = threshold
        self.name = model_file.stem
        self.version = str(model_file.stat().st_size)
        self.best_rejected = 0.0

    def detect_video(self, frames: list[np.ndarray], times: list[float]) -> list[Detection]:
        found = []
        for index, frame in enumerate(frames):
            for detection in self.detect_image(frame):
                detection.frame, detection.time_s = index, times[index]
                found.append(detection)
        return found

    def detect_image(self, image: np.ndarray) -> list[Detection]:
        canvas, scale, pad = letterbox(image, self.size)
        batch = (canvas[:, :, ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        output = self.session.run(None, {self.input_name: np.ascontiguousarray(batch)})[0]
        size = (image.shape[1], image.shape[0])
        boxes = decode_yolo(output, len(self.class_names), self.threshold, scale, pad, size)
        return self._labelled(image, boxes)

    def _labelled(self, image: np.ndarray, boxes: list[tuple[Box, int, float]]) -> list[Detection]:
        names = [self._class_name(class_id) for _, class_id, _ in boxes]
        animals = [i for i, name in enumerate(names) if name == "animal"]
        crops = [crop(image, boxes[i][0]) for i in animals]
        probabilities = self.classifier.probabilities(crops)
        detections = []
        for position, ((box, _, score), name) in enumerate(zip(boxes, names, strict=True)):
            if position in animals:
                row = probabilities[animals.index(position)]
                label = taxonomy.animal_label(row, self.species_threshold)
                detections.append(labelled(0, 0.0, box, label._replace(score=score)))
            else:
                detections.append(Detection(0, 0.0, box, name, name, score))
        return detections

    def _class_name(self, class_id: int) -> str:
        if class_id < len(self.class_names):
            return self.class_names[class_id]
        return f"class {class_id}"


@cache
def onnx_session(model_file: str, device: str = "cpu") -> Any:
    """An ONNX Runtime session per model file and device, once per worker process."""
    import onnxruntime

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        providers.insert(0, "CUDAExecutionProvider")
    return onnxruntime.InferenceSession(model_file, providers=providers)
