"""Keypoints per track from a local ONNX pose model (for example a DeepLabCut SuperAnimal
export), run on each track's best crop. No pose model ships with the install: without
``CONVEYOR_WILDLIFE_POSE_MODEL`` the step records that none is installed.

The model is expected to take a 1x3xHxW float image in 0..1 (RGB) and return heatmaps of shape
1xKxhxw, one channel per keypoint; each keypoint is the heatmap's peak and its value the score.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

UNAVAILABLE = {"available": False, "reason": "no pose model installed"}


def keypoints_from_heatmaps(
    heatmaps: np.ndarray, box: tuple[float, float, float, float]
) -> list[list[float]]:
    """[x, y, score] per keypoint in frame pixels, from Kxhxw heatmaps over ``box``."""
    count, height, width = heatmaps.shape
    x1, y1, x2, y2 = box
    points = []
    for channel in heatmaps.reshape(count, -1):
        peak = int(np.argmax(channel))
        row, column = divmod(peak, width)
        points.append(
            [
                round(x1 + (column + 0.5) / width * (x2 - x1), 1),
                round(y1 + (row + 0.5) / height * (y2 - y1), 1),
                round(float(channel[peak]), 4),
            ]
        )
    return points


class PoseModel:
    def __init__(self, model_file: Path, device: str = "cpu") -> None:
        from conveyor.pipelines.wildlife.detector import onnx_session

        self.session = onnx_session(str(model_file), device)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        height, width = model_input.shape[-2:]
        self.size = (
            width if isinstance(width, int) else 256,
            height if isinstance(height, int) else 256,
        )
        self.name = model_file.name

    def keypoints(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> list[Any]:
        import cv2

        x1, y1, x2, y2 = (round(v) for v in box)
        patch = frame[max(0, y1) : max(y2, y1 + 1), max(0, x1) : max(x2, x1 + 1)]
        resized = cv2.resize(patch, self.size)[:, :, ::-1].astype(np.float32) / 255.0
        heatmaps = self.session.run(None, {self.input_name: resized.transpose(2, 0, 1)[None]})[0]
        return keypoints_from_heatmaps(heatmaps[0], box)


@cache
def load_pose_model(model_file: str, device: str = "cpu") -> PoseModel:
    return PoseModel(Path(model_file), device)
