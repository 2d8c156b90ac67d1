"""PyTorch classifiers on the same path as the built-in models: a training step saves the
network and its ONNX export, the control side logs them to MLflow (``pytorch_flavor.py``), and
serving answers with the ONNX file through onnxruntime, like the scikit-learn models.

The contract of a network: a ``torch.nn.Module`` whose ``forward`` takes one float32 tensor
(rows x features, schema order, NaN for a missing value) and returns class probabilities
(rows x classes); any preprocessing (imputation, scaling, one-hot encoding) lives inside it, so
the saved network, its ONNX file and the served endpoint all take the raw features. The label
is the index of the most probable class.

Networks travel as ``torch.export`` programs (``.pt2``): a graph and its weights, no pickled
Python, loadable without the user's class. Nothing here imports MLflow: training steps use
this module. ``examples/custom_pytorch`` is a whole pipeline.
"""

from __future__ import annotations

import io
import warnings
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from conveyor.models.flavors import DeferredFlavor
from conveyor.models.onnx import INPUT_NAME

if TYPE_CHECKING:
    import pandas as pd
    import torch


ONNX_OUTPUTS = ("label", "probabilities")


class NetworkClassifier:
    """A network seen as a scikit-learn classifier (``predict``, ``predict_proba`` on a
    table), so held-out metrics and the ONNX agreement check treat it like any model. The
    network must be in evaluation mode (a loaded program always is)."""

    def __init__(self, network: torch.nn.Module) -> None:
        self.network = network

    def predict_proba(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        import torch

        matrix = np.asarray(features, dtype=np.float32)
        with torch.no_grad():
            return np.asarray(self.network(torch.from_numpy(matrix)).numpy(), dtype=float)

    def predict(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        return np.asarray(self.predict_proba(features).argmax(axis=1))


def save_program(network: torch.nn.Module, example: np.ndarray) -> bytes:
    """The network as a ``torch.export`` program with any number of rows, as bytes."""
    import torch

    program = torch.export.export(
        network.eval(),
        (torch.from_numpy(np.asarray(example, dtype=np.float32)),),
        dynamic_shapes=({0: torch.export.Dim("rows", min=1)},),
    )
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def load_program(source: Path | bytes) -> torch.nn.Module:
    """A network saved by :func:`save_program`: a graph module (no user code needed)."""
    import torch

    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    return torch.export.load(stream).module()


def to_onnx_bytes(network: torch.nn.Module, feature_count: int) -> bytes:
    """ONNX with the built-in models' interface: input ``features``, outputs ``label`` and
    ``probabilities``, any number of rows; served by the same onnxruntime path.

    Uses PyTorch's TorchScript-based exporter: the ``torch.export``-based one needs the
    ``onnxscript`` package, which Conveyor does not depend on (PyTorch is pinned, so the
    deprecated exporter stays available)."""
    import torch

    class WithLabels(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network.eval()

        def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            probabilities = self.network(features)
            return torch.argmax(probabilities, dim=1), probabilities

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            WithLabels(),
            (torch.zeros(2, feature_count),),
            buffer,
            input_names=[INPUT_NAME],
            output_names=list(ONNX_OUTPUTS),
            dynamic_axes={name: {0: "rows"} for name in (INPUT_NAME, *ONNX_OUTPUTS)},
            dynamo=False,
        )
    return buffer.getvalue()


# The ``flavor`` of a ``TrainingPipeline`` whose model is a network saved by
# :func:`save_program`: MLflow is imported only when the control side logs or scores it.
TorchClassifierFlavor = partial(DeferredFlavor, "conveyor.models.pytorch_flavor:TorchClassifier")
