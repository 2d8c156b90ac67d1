"""conveyor.models.pytorch without servers: a network saved as a torch.export program answers
like the network for any number of rows, its ONNX export has the built-in interface and agrees
with it (missing values included), and the pyfunc model answers label and probability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conveyor.models import onnx, pytorch


class Imputing(torch.nn.Module):
    """A user's network: NaN replaced by a buffer, one layer, softmax."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.register_buffer("fill", torch.tensor([0.5, -1.0, 2.0]))
        self.layer = torch.nn.Linear(3, 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        filled = torch.where(torch.isnan(features), self.fill, features)
        return torch.softmax(self.layer(filled), dim=1)


def _rows(count: int) -> np.ndarray:
    rows = np.random.default_rng(count).normal(size=(count, 3))
    rows[0, 1] = np.nan
    return rows


@pytest.mark.parametrize("count", [1, 2, 57])
def test_the_program_answers_like_the_network_for_any_number_of_rows(count: int) -> None:
    network = Imputing().eval()
    program = pytorch.load_program(pytorch.save_program(network, _rows(8)))
    assert not isinstance(program, Imputing)  # a graph: loading needs no user class
    native = pytorch.NetworkClassifier(network)
    saved = pytorch.NetworkClassifier(program)
    np.testing.assert_array_equal(
        saved.predict_proba(_rows(count)), native.predict_proba(_rows(count))
    )


def test_the_onnx_export_has_the_built_in_interface_and_agrees() -> None:
    network = Imputing().eval()
    onnx_bytes = pytorch.to_onnx_bytes(network, 3)
    labels, probabilities = onnx.onnx_predict(onnx_bytes, _rows(30))
    assert labels.shape == (30,) and probabilities.shape == (30, 2)
    native = pytorch.NetworkClassifier(network)
    agreement = onnx.check_agreement(native, onnx_bytes, pd.DataFrame(_rows(30)))
    assert agreement.label_agreement == 1.0 and agreement.max_probability_difference < 1e-6


def test_the_pyfunc_model_answers_label_and_probability_of_class_one() -> None:
    from conveyor.models.pytorch_flavor import NetworkModel

    model = NetworkModel()
    model.classifier = pytorch.NetworkClassifier(Imputing().eval())
    answer = model.predict(None, pd.DataFrame(_rows(4), columns=["a", "b", "c"]))
    expected = model.classifier.predict_proba(_rows(4))
    assert list(answer.columns) == ["label", "probability"]
    assert answer["label"].tolist() == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose(answer["probability"], expected[:, 1])
