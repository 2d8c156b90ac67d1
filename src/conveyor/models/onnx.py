"""Edge export: scikit-learn models to ONNX, checked against the native model.

The ONNX graph takes one float32 tensor ``features`` (rows x features, schema order, NaN for a
missing value) and returns ``label`` and ``probabilities`` (rows x classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from conveyor.errors import ConveyorError

if TYPE_CHECKING:  # pandas costs a scoring actor ~0.5 CPU-s to import, for nothing
    import pandas as pd

INPUT_NAME = "features"
DEFAULT_TOLERANCE = 1e-4


class OnnxUnsupportedError(ConveyorError):
    """skl2onnx has no converter for a part of the model; it is kept without an ONNX copy."""

    code = "onnx_unsupported"


class OnnxMismatchError(ConveyorError):
    """The ONNX model does not predict what the native model predicts."""

    code = "onnx_mismatch"


@dataclass(frozen=True)
class Agreement:
    rows: int
    label_agreement: float  # share of rows with the same predicted label
    max_probability_difference: float

    def as_metrics(self) -> dict[str, float]:
        return {
            "onnx_label_agreement": self.label_agreement,
            "onnx_max_probability_difference": self.max_probability_difference,
        }


def to_onnx_bytes(model: Any, feature_count: int) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator

    classifier = model.steps[-1][1] if hasattr(model, "steps") else model
    try:
        onnx_model = to_onnx(
            model,
            initial_types=[(INPUT_NAME, FloatTensorType([None, feature_count]))],
            options={id(classifier): {"zipmap": False}},
        )
    except (MissingConverter, MissingShapeCalculator) as error:
        raise OnnxUnsupportedError(
            f"skl2onnx cannot convert {type(classifier).__name__}: {str(error).splitlines()[0]}"
        ) from error
    return onnx_model.SerializeToString()


def onnx_predict(onnx_bytes: bytes, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) from an ONNX classifier on a float matrix."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {INPUT_NAME: features.astype(np.float32)})
    return np.asarray(labels), np.asarray(probabilities)


def check_agreement(
    model: Any, onnx_bytes: bytes, features: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE
) -> Agreement:
    """Compare ONNX and native predictions on ``features``; raise when they disagree."""
    labels, probabilities = onnx_predict(onnx_bytes, features.to_numpy())
    native_labels = model.predict(features)
    native_probabilities = model.predict_proba(features)
    agreement = Agreement(
        rows=len(features),
        label_agreement=round(float(np.mean(labels == native_labels)), 6),
        max_probability_difference=float(np.max(np.abs(probabilities - native_probabilities))),
    )
    if agreement.label_agreement < 1.0 or agreement.max_probability_difference > tolerance:
        raise OnnxMismatchError(
            f"the ONNX export disagrees with the native model on {agreement.rows} held-out rows: "
            f"labels agree on {agreement.label_agreement:.2%}, probabilities differ by up to "
            f"{agreement.max_probability_difference:.2g} (tolerance {tolerance:g}). The model "
            "is not exported; check for operators skl2onnx converts differently."
        )
    return agreement
