"""A local speaker-embedding model, chosen by CONVEYOR_CALLS_SPEAKER_EMBEDDING_MODEL, in place of
resemblyzer. No real model ships in a package, so the tests build tiny ONNX models with
onnx.helper that take each kind of input the loader supports (waveform; filterbanks frames-first
and bins-first, with a lengths input) and check what reaches them and what comes back: the right
windows, the filterbank shape, unit-length embeddings of the model's own size going into the
clustering, and the errors a user sees for a wrong path, shape or missing pyannote.audio."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conveyor.errors import ConfigurationError
from conveyor.pipelines.calls import audio, diarisation, fbank, speaker_models, steps
from conveyor.pipelines.calls.settings import CallsSettings
from support.calls_audio import Call

RATE = 16000


def _save(
    path: Path, nodes: list, inputs: list, output: str, initializers=(), shape=("b", "d")
) -> Path:  # type: ignore[no-untyped-def]
    graph = helper.make_graph(
        nodes,
        "tiny",
        inputs,
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, list(shape))],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _waveform_min_max(path: Path) -> Path:
    """(batch, samples) -> (batch, 2): each window's first-to-last range as [min, max]."""
    audio_in = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "samples"])
    nodes = [
        helper.make_node("ReduceMin", ["audio"], ["low"], axes=[1], keepdims=1),
        helper.make_node("ReduceMax", ["audio"], ["high"], axes=[1], keepdims=1),
        helper.make_node("Concat", ["low", "high"], ["embedding"], axis=1),
    ]
    return _save(path / "minmax.onnx", nodes, [audio_in], "embedding")


def _bins_first_with_lengths(path: Path) -> Path:
    """(batch, 80, frames) + lengths -> (batch, 81): energy per bin, then the length."""
    features = helper.make_tensor_value_info("audio_signal", TensorProto.FLOAT, ["b", 80, "t"])
    lengths = helper.make_tensor_value_info("length", TensorProto.INT64, ["b"])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
    one = helper.make_tensor("one", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("ReduceSumSquare", ["audio_signal", "axes"], ["energy"], keepdims=0),
        helper.make_node("Unsqueeze", ["length", "one"], ["length_column"]),
        helper.make_node("Cast", ["length_column"], ["length_float"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["energy", "length_float"], ["embs"], axis=1),
        helper.make_node("Identity", ["energy"], ["logits"]),
    ]
    graph_inputs = [features, lengths]
    model_path = path / "bins_first.onnx"
    graph = helper.make_graph(
        nodes,
        "tiny",
        graph_inputs,
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 80]),
            helper.make_tensor_value_info("embs", TensorProto.FLOAT, ["b", 81]),
        ],
        [axes, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, model_path)
    return model_path


def _frames_first_projection(path: Path, size: int = 16) -> Path:
    """(batch, frames, 80) -> (batch, size): a fixed random projection of each frame, ReLU,
    averaged over frames (the shape of a real embedding network, without the training)."""
    features = helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["b", "t", 80])
    weights = np.random.default_rng(7).normal(size=(80, size)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["feats", "weights"], ["projected"]),
        helper.make_node("Relu", ["projected"], ["active"]),
        helper.make_node("ReduceMean", ["active"], ["embedding"], axes=[1], keepdims=0),
    ]
    initial = [helper.make_tensor("weights", TensorProto.FLOAT, weights.shape, weights.ravel())]
    return _save(path / "projection.onnx", nodes, [features], "embedding", initial)


def test_filterbanks_have_kaldi_frames_and_a_tone_peaks_in_its_band() -> None:
    time = np.arange(RATE) / RATE
    tones = np.stack([0.3 * np.sin(2 * np.pi * hz * time) for hz in (1000, 300)])
    features = fbank.fbank(tones.astype(np.float32))
    assert features.shape == (2, 1 + (RATE - 400) // 160, 80)
    assert np.allclose(features.mean(axis=1), 0, atol=1e-3)  # mean removed per window
    loudest = fbank.log_mel(tones).mean(axis=1).argmax(axis=1)
    banks = fbank.mel_banks(80)
    for hz, found in zip((1000, 300), loudest, strict=True):
        assert banks[found, round(hz * 512 / RATE)] > 0.5  # the filter centred near the tone


def test_windows_are_cut_around_each_centre_and_padded_at_the_ends() -> None:
    ramp = np.arange(4 * RATE, dtype=np.float32) / RATE  # each sample holds its own time
    windows = speaker_models.cut_windows(ramp, [1.0, 0.1, 3.95], 0.5)
    assert windows.shape == (3, RATE // 2)
    assert windows[0, 0] == pytest.approx(0.75) and windows[0, -1] == pytest.approx(1.25, abs=1e-3)
    assert windows[1, 0] == 0.0 and windows[1, -1] == pytest.approx(0.35, abs=1e-3)
    assert windows[2, -1] == 0.0  # past the end


def test_a_waveform_model_gets_the_windows_and_returns_unit_embeddings(tmp_path: Path) -> None:
    embedder = speaker_models.load(_waveform_min_max(tmp_path))
    ramp = 0.1 + np.arange(4 * RATE, dtype=np.float32) / RATE
    found = embedder.embed(ramp, [1.0, 2.0, 3.0], 1.6)
    assert found.shape == (3, 2) and np.allclose(np.linalg.norm(found, axis=1), 1.0)
    for centre, (low, high) in zip([1.0, 2.0, 3.0], found, strict=True):
        assert high / low == pytest.approx((0.1 + centre + 0.8) / (0.1 + centre - 0.8), rel=1e-3)
    assert embedder.name == "ONNX minmax.onnx"


def test_a_bins_first_model_gets_filterbanks_and_its_lengths_input(tmp_path: Path) -> None:
    embedder = speaker_models.load(_bins_first_with_lengths(tmp_path))
    noise = np.random.default_rng(1).normal(0, 0.1, 3 * RATE).astype(np.float32)
    raw = speaker_models.cut_windows(noise, [1.0, 2.0], 0.8)
    run = speaker_models.onnx_runner(tmp_path / "bins_first.onnx", 1)
    output = run(raw)  # the "embs" output is chosen over the first one ("logits")
    assert output.shape == (2, 81)
    assert np.all(output[:, 80] == 1 + (round(0.8 * RATE) - 400) // 160)  # frames, as lengths
    assert embedder.embed(noise, [1.0, 2.0], 0.8).shape == (2, 81)


def test_the_calls_step_clusters_the_models_embeddings(
    tmp_path: Path, angry_mono_wav: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _frames_first_projection(tmp_path)
    monkeypatch.setenv("CONVEYOR_CALLS_SPEAKER_EMBEDDING_MODEL", str(model))
    clustered: list[np.ndarray] = []
    real_clustering = diarisation.cluster_speakers

    def spy(embeddings: np.ndarray, bounds):  # type: ignore[no-untyped-def]
        clustered.append(embeddings)
        return real_clustering(embeddings, bounds)

    monkeypatch.setattr(diarisation, "cluster_speakers", spy)
    mono = audio.decode(angry_mono_wav.path).mono()
    turns, method = steps.mono_turns(mono, CallsSettings())
    assert method == "voice embeddings (ONNX projection.onnx), spectral clustering"
    assert len(clustered) == 1 and clustered[0].shape[1] == 16
    assert np.allclose(np.linalg.norm(clustered[0], axis=1), 1.0)
    assert len({t.speaker for t in turns}) >= 2  # min_speakers is 2 for calls
    assert turns[-1].end > angry_mono_wav.duration - 3


def test_a_missing_path_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as error:
        speaker_models.load(tmp_path / "nowhere.onnx")
    assert "CONVEYOR_CALLS_SPEAKER_EMBEDDING_MODEL" in str(error.value)
    assert "unset CONVEYOR_CALLS_SPEAKER_EMBEDDING_MODEL" in str(error.value)


def test_a_model_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 3, 224, 224])
    nodes = [helper.make_node("ReduceMean", ["image"], ["out"], axes=[2, 3], keepdims=0)]
    with pytest.raises(ConfigurationError, match=r"expected \(batch, samples\)"):
        speaker_models.load(_save(tmp_path / "image.onnx", nodes, [image], "out"))
    wave = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["b", "n"])
    nodes = [helper.make_node("Unsqueeze", ["audio", "axes"], ["out"])]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    saved = _save(tmp_path / "frames.onnx", nodes, [wave], "out", [axes], ("b", 1, "n"))
    embedder = speaker_models.load(saved)
    with pytest.raises(ConfigurationError, match=r"returns \(batch, dimensions\)"):
        embedder.embed(np.zeros(RATE, dtype=np.float32), [0.5], 0.8)


@pytest.mark.skipif(
    importlib.util.find_spec("pyannote") is not None, reason="pyannote is installed here"
)
def test_a_checkpoint_without_pyannote_says_what_to_install(tmp_path: Path) -> None:
    checkpoint = tmp_path / "pytorch_model.bin"
    checkpoint.write_bytes(b"not read")
    with pytest.raises(ConfigurationError) as error:
        speaker_models.load(checkpoint)
    assert "pip install 'pyannote.audio" in str(error.value)
    assert "CONVEYOR_CALLS_SPEAKER_EMBEDDING_MODEL" in str(error.value)


def test_a_pyannote_checkpoint_is_loaded_from_its_path_and_given_mono_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyannote.audio is not installed here: a stand-in module with its ``Model.from_pretrained``
    records the path it is given and returns a torch module, to check the call contract."""
    import importlib.machinery
    import types

    import torch

    loaded: list[str] = []
    seen: list[tuple[int, ...]] = []

    class Energy(torch.nn.Module):
        def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
            seen.append(tuple(waveforms.shape))
            return torch.cat([waveforms.abs().mean(-1), waveforms.pow(2).mean(-1)], dim=1)

    class Model:
        @staticmethod
        def from_pretrained(checkpoint: str) -> torch.nn.Module:
            loaded.append(checkpoint)
            return Energy()

    for name, attributes in (("pyannote", {}), ("pyannote.audio", {"Model": Model})):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    checkpoint = tmp_path / "pytorch_model.bin"
    checkpoint.write_bytes(b"stand-in")
    embedder = speaker_models.load(checkpoint)
    noise = np.random.default_rng(2).normal(0, 0.1, 2 * RATE).astype(np.float32)
    found = embedder.embed(noise, [0.5, 1.0, 1.5], 0.8)
    assert loaded == [str(checkpoint)] and seen == [(3, 1, round(0.8 * RATE))]
    assert found.shape == (3, 2) and np.allclose(np.linalg.norm(found, axis=1), 1.0)
    assert embedder.name == "pyannote pytorch_model.bin"
