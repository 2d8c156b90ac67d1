"""Speaker embeddings from a model the user has on disk, in place of resemblyzer's.

``CONVEYOR_CALLS_SPEAKER_EMBEDDING_MODEL`` names either

- an ONNX speaker-embedding model (a ``.onnx`` file: a WeSpeaker ResNet or ECAPA-TDNN export,
  NeMo TitaNet with its preprocessor in the graph, ...), run by ONNX Runtime. Its first input
  says what it takes: ``(batch, samples)`` gets the 16 kHz waveform; ``(batch, frames, bins)``
  gets Kaldi-style log mel filterbanks (:mod:`.fbank`, the WeSpeaker convention) and
  ``(batch, bins, frames)`` the same transposed. A second input, if any, gets each window's
  length (samples or frames). The output named like ``emb…``, else the first, must be
  ``(batch, dimensions)``;
- a pyannote.audio embedding checkpoint (a ``.ckpt``/``.bin`` file, or a folder holding
  ``pytorch_model.bin``), loaded with ``pyannote.audio.Model.from_pretrained`` from that path
  (no hub access) and given ``(batch, 1, samples)`` waveforms.

Either way the embeddings go into the same clustering and re-segmentation as resemblyzer's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from conveyor.errors import ConfigurationError
from conveyor.pipelines.calls import fbank
from conveyor.pipelines.calls.pyannote_diarisation import pyannote_installed

SETTING = "CONVEYOR_CALLS_SPEAKER_EMBEDDING_MODEL"
RATE = 16000
BATCH = 64
Runner = Callable[[np.ndarray], np.ndarray]  # (batch, samples) -> (batch, dimensions)


class SpeakerEmbedder:
    """An :data:`.diarisation.Embedder`: unit-length embeddings of windows of a call."""

    def __init__(self, name: str, run: Runner) -> None:
        self.name = name
        self._run = run

    def embed(self, mono: np.ndarray, centres: Sequence[float], window_s: float) -> np.ndarray:
        windows = cut_windows(mono, centres, window_s)
        outputs = [self._run(windows[i : i + BATCH]) for i in range(0, len(windows), BATCH)]
        if not outputs:
            return np.zeros((0, 1), dtype=np.float32)
        found = np.concatenate(outputs).astype(np.float32)
        norms = np.linalg.norm(found, axis=1, keepdims=True)
        return found / np.maximum(norms, 1e-9)


def cut_windows(mono: np.ndarray, centres: Sequence[float], window_s: float) -> np.ndarray:
    """(len(centres), window) samples centred on each centre, zeros past the call's ends."""
    length = round(window_s * RATE)
    padded = np.pad(mono.astype(np.float32), (length, length))
    starts = [round(c * RATE) - length // 2 + length for c in centres]
    return np.stack([padded[s : s + length] for s in starts]) if starts else np.zeros((0, length))


def load(path: Path, threads: int = 2) -> SpeakerEmbedder:
    """The embedder for ``path`` (ONNX or pyannote), or a ConfigurationError saying what is
    wrong and how to fix it."""
    if not path.exists():
        raise ConfigurationError(
            f"{SETTING}={path}: no such file or folder; point it at a speaker-embedding .onnx "
            f"file or a pyannote.audio embedding checkpoint, or unset {SETTING} to use the "
            "built-in resemblyzer embeddings."
        )
    if path.suffix == ".onnx":
        return SpeakerEmbedder(f"ONNX {path.name}", onnx_runner(path, threads))
    return SpeakerEmbedder(f"pyannote {path.name}", pyannote_runner(path))


def onnx_runner(path: Path, threads: int) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # ONNX Runtime raises its own exception types
        message = f"{SETTING}={path}: ONNX Runtime cannot load it: {error}"
        raise ConfigurationError(message) from error
    inputs = session.get_inputs()
    prepare, time_axis = input_preparer(path, inputs[0].shape)
    output = _embedding_output(session.get_outputs())

    def run(windows: np.ndarray) -> np.ndarray:
        features = prepare(windows)
        feeds = {inputs[0].name: features}
        if len(inputs) > 1:  # e.g. NeMo's input lengths
            steps = features.shape[time_axis]
            feeds[inputs[1].name] = np.full(len(features), steps, dtype=np.int64)
        embeddings = session.run([output], feeds)[0]
        if embeddings.ndim != 2 or len(embeddings) != len(windows):
            raise ConfigurationError(
                f"{SETTING}={path}: output {output!r} has shape {embeddings.shape} for "
                f"{len(windows)} windows; a speaker-embedding model returns (batch, dimensions)"
            )
        return embeddings

    return run


def input_preparer(
    path: Path, shape: Sequence[Any]
) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """How windows become the model's first input, from that input's declared shape, and which
    axis of it is time."""
    if len(shape) == 2:
        return (lambda windows: windows.astype(np.float32)), 1
    if len(shape) == 3 and isinstance(shape[2], int):
        return (lambda windows: fbank.fbank(windows, shape[2])), 1
    if len(shape) == 3 and isinstance(shape[1], int):
        return (lambda windows: _channels_first(fbank.fbank(windows, shape[1]))), 2
    raise ConfigurationError(
        f"{SETTING}={path}: its input has shape {list(shape)}; expected (batch, samples) for a "
        "waveform or (batch, frames, bins) / (batch, bins, frames) with a fixed number of "
        "filterbank bins"
    )


def _channels_first(features: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(features.transpose(0, 2, 1))


def _embedding_output(outputs: Sequence[Any]) -> str:
    named = [o.name for o in outputs if o.name.lower().startswith("emb")]
    return named[0] if named else outputs[0].name


def pyannote_runner(path: Path) -> Runner:
    if not pyannote_installed():
        raise ConfigurationError(
            f"{SETTING}={path} points at a pyannote.audio checkpoint, but pyannote.audio is not "
            "installed on this worker; install it (pip install 'pyannote.audio>=3.1'), export "
            f"the model to ONNX, or unset {SETTING} to use the built-in resemblyzer embeddings."
        )
    import torch
    from pyannote.audio import Model

    model = Model.from_pretrained(str(path))
    if model is None:
        raise ConfigurationError(f"{SETTING}={path}: pyannote.audio could not load a model")
    model.eval()

    def run(windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            batch = torch.from_numpy(windows[:, None, :].astype(np.float32))
            return model(batch).cpu().numpy()

    return run
