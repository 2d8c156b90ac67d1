"""Speaker embeddings with resemblyzer: one mel spectrogram of the whole call, then batched
windows through the encoder (one forward pass per batch, no per-window Python loop over audio).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from conveyor.pipelines.calls import models

RATE = 16000
MEL_STEP_S = 0.01
WINDOW_FRAMES = 160
BATCH = 256
TARGET_DBFS = -30.0


def embed_windows(
    mono: np.ndarray, centres: Sequence[float], window_s: float = WINDOW_FRAMES * MEL_STEP_S
) -> np.ndarray:
    """Unit-length speaker embeddings of ``window_s`` windows centred on ``centres`` (the
    encoder was trained on 1.6 s; shorter windows are noisier but place changes finer)."""
    import torch
    from resemblyzer.audio import wav_to_mel_spectrogram

    encoder = models.voice_encoder()
    mel = wav_to_mel_spectrogram(_normalise(mono))
    frames = round(window_s / MEL_STEP_S)
    padded = np.pad(mel, ((frames, frames), (0, 0)))
    starts = [round(c / MEL_STEP_S) + frames - frames // 2 for c in centres]
    outputs = []
    with torch.inference_mode():
        for first in range(0, len(starts), BATCH):
            batch = np.stack([padded[s : s + frames] for s in starts[first : first + BATCH]])
            outputs.append(encoder(torch.from_numpy(batch)).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, 256), dtype=np.float32)


def _normalise(mono: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(mono.astype(np.float64) ** 2))) + 1e-9
    gain = 10 ** (TARGET_DBFS / 20) / rms
    return (mono * gain).astype(np.float32)
