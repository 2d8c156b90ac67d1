"""A transformer emotion classifier exported to ONNX, used instead of the lexicon when
``CONVEYOR_CALLS_EMOTION_MODEL`` names a local folder holding:

- ``model.onnx``: a sequence classifier taking ``input_ids`` and ``attention_mask`` (and
  ``token_type_ids`` if it declares them) and returning logits;
- ``tokenizer.json``: its Hugging Face fast tokenizer;
- ``config.json``: with ``id2label`` (e.g. the six labels of a distilbert emotion model).

Labels outside the six emotions (e.g. "neutral") are ignored; missing ones score 0.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from conveyor.errors import ConfigurationError
from conveyor.pipelines.calls.emotion_scores import EMOTIONS

MAX_TOKENS = 256


@cache
def load(folder: str) -> tuple[Any, Any, dict[int, str]]:
    import onnxruntime
    from tokenizers import Tokenizer

    root = Path(folder)
    missing = [
        n for n in ("model.onnx", "tokenizer.json", "config.json") if not (root / n).exists()
    ]
    if missing:
        raise ConfigurationError(
            f"CONVEYOR_CALLS_EMOTION_MODEL={folder} lacks {', '.join(missing)}; export the "
            "classifier to ONNX with its tokenizer.json and config.json, or unset the setting."
        )
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(root / "model.onnx"), options)
    labels = json.loads((root / "config.json").read_text())["id2label"]
    return session, tokenizer, {int(k): v.lower() for k, v in labels.items()}


def classify(folder: str, texts: list[str]) -> list[dict[str, float]]:
    """Softmax probabilities of the six emotions for each text."""
    if not texts:
        return []
    session, tokenizer, labels = load(folder)
    encoded = tokenizer.encode_batch(texts)
    feeds = {
        "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
    }
    wanted = {i.name for i in session.get_inputs()}
    logits = session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    return [
        {e: float(sum(p for i, p in enumerate(row) if labels.get(i) == e)) for e in EMOTIONS}
        for row in probabilities
    ]
