"""A transformer emotion classifier given as a local ONNX export replaces the lexicon. The
model here is a tiny hand-made graph with a real tokenizer.json, so the loading code is real."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tokenizers import Tokenizer, models, pre_tokenizers

from conveyor.errors import ConfigurationError
from conveyor.pipelines.calls import classifier, scoring

LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
VOCABULARY = ["[PAD]", "[UNK]", "sad", "happy", "adore", "furious", "scared", "wow"]


def _make_model(folder: Path) -> Path:
    """logits[b, k] = number of tokens in text b whose id is k + 2 (word k's emotion)."""
    folder.mkdir()
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCABULARY)}, "[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    table = np.zeros((len(VOCABULARY), len(LABELS)), dtype=np.float32)
    for k in range(len(LABELS)):
        table[k + 2, k] = 4.0
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["per_token"], axis=0),
            helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["mask", "axis2"], ["mask3"]),
            helper.make_node("Mul", ["per_token", "mask3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "axis1"], ["logits"], keepdims=0),
        ],
        "tiny_emotions",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "t"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "t"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", len(LABELS)])],
        [
            helper.make_tensor("table", TensorProto.FLOAT, table.shape, table.flatten()),
            helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
            helper.make_tensor("axis2", TensorProto.INT64, [1], [2]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    labels = {str(i): name for i, name in enumerate(LABELS)}
    (folder / "config.json").write_text(json.dumps({"id2label": labels}))
    return folder


def test_onnx_classifier_scores_each_utterance(tmp_path: Path) -> None:
    folder = _make_model(tmp_path / "emotion-model")
    scores = classifier.classify(str(folder), ["furious furious", "wow", "happy"])
    assert [max(s, key=s.get) for s in scores] == ["anger", "surprise", "joy"]
    assert all(abs(sum(s.values()) - 1) < 1e-5 for s in scores)

    utterances = [
        {"start": 0.0, "end": 4.0, "speaker": "S1", "text": "happy happy"},
        {"start": 5.0, "end": 9.0, "speaker": "S2", "text": "furious"},
    ]
    scored = scoring.score_call(utterances, 10.0, folder)
    assert scored["method"].startswith("transformer classifier")
    assert scored["speakers"]["S2"]["top_emotion"] == "anger"
    assert scored["speakers"]["S1"]["top_emotion"] == "joy"


def test_an_incomplete_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ConfigurationError, match=r"lacks tokenizer.json, config.json"):
        classifier.load(str(tmp_path))
