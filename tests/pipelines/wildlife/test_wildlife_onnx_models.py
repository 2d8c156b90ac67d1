"""The optional local models load and run for real in ONNX Runtime: a YOLO-format detector (as
a MegaDetector export) and a heatmap pose model, here tiny ONNX graphs with known outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from conveyor.pipelines.wildlife.classifier import load_classifier
from conveyor.pipelines.wildlife.detector import OnnxObjectDetector
from conveyor.pipelines.wildlife.pose import PoseModel


def _constant_model(path: Path, input_shape: list[int], output: np.ndarray) -> Path:
    """A graph whose output is ``output`` plus 0 x the mean of its image input."""
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, input_shape)
    result = helper.make_tensor_value_info("output", TensorProto.FLOAT, list(output.shape))
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["fixed", "nothing"], ["output"]),
    ]
    initialisers = [
        numpy_helper.from_array(np.zeros((), np.float32), "zero"),
        numpy_helper.from_array(output.astype(np.float32), "fixed"),
    ]
    graph = helper.make_graph(nodes, "fixed", [image], [result], initialisers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_yolov5_onnx_detector_finds_boxes_and_the_classifier_names_the_animal(
    tmp_path: Path,
) -> None:
    rows = np.zeros((1, 3, 8), np.float32)
    rows[0, 0] = [32, 32, 32, 32, 0.9, 0.95, 0.03, 0.02]  # an animal in the middle
    rows[0, 1] = [8, 8, 8, 8, 0.9, 0.02, 0.9, 0.08]  # a person top left
    model = _constant_model(tmp_path / "md.onnx", [1, 3, 64, 64], rows)
    detector = OnnxObjectDetector(
        model, ["animal", "person", "vehicle"], load_classifier(), threshold=0.2
    )
    assert detector.size == 64 and detector.name == "md"
    from skimage import data

    cat = np.ascontiguousarray(data.chelsea()[:, 75:375, ::-1])  # 300x300 BGR
    found = detector.detect_image(cat)
    assert [(d.group, round(d.score, 3)) for d in found] == [("mammal", 0.855), ("person", 0.81)]
    assert found[0].box == (75.0, 75.0, 225.0, 225.0)
    # a cat for sure (three cat classes hold 0.92), but no one breed reaches 0.5: group only
    assert found[0].species == "mammal" and found[0].species_probability < 0.5
    assert all(name.endswith(("cat", "tabby")) for name, _ in found[0].alternatives)
    video = detector.detect_video([cat, cat], [0.0, 0.2])
    assert [(d.frame, d.time_s) for d in video] == [(0, 0.0), (0, 0.0), (1, 0.2), (1, 0.2)]


def test_a_heatmap_pose_model_gives_keypoints_in_frame_pixels(tmp_path: Path) -> None:
    heatmaps = np.zeros((1, 2, 8, 8), np.float32)
    heatmaps[0, 0, 2, 6] = 0.8
    heatmaps[0, 1, 7, 1] = 0.6
    model = PoseModel(_constant_model(tmp_path / "pose.onnx", [1, 3, 32, 32], heatmaps))
    frame = np.zeros((100, 200, 3), np.uint8)
    points = model.keypoints(frame, (40.0, 20.0, 120.0, 100.0))
    assert points == [[105.0, 45.0, 0.8], [55.0, 95.0, 0.6]]
