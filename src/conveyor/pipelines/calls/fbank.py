"""Kaldi-style log mel filterbanks, the input WeSpeaker-family speaker-embedding models take.

Matches ``torchaudio.compliance.kaldi.fbank`` as WeSpeaker calls it (16 kHz, 25 ms frames
every 10 ms without padding the edges, DC removed, pre-emphasis 0.97, Hamming window, 512-point
power spectrum, triangular filters on Kaldi's mel scale from 20 Hz to Nyquist, natural log; the
waveform scaled to the 16-bit range first), then each window's mean is removed (cepstral mean
normalisation). Pure numpy: torchaudio is not a dependency.
"""

from __future__ import annotations

from functools import cache

import numpy as np

RATE = 16000
FRAME = 400  # 25 ms
SHIFT = 160  # 10 ms
FFT = 512
LOW_HZ = 20.0
PREEMPHASIS = 0.97


def _mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


@cache
def mel_banks(bins: int) -> np.ndarray:
    """(bins, FFT // 2 + 1) triangular filters, flat in Kaldi's mel scale."""
    low, high = _mel(LOW_HZ), _mel(RATE / 2)
    edges = low + np.arange(bins + 2) * (high - low) / (bins + 1)
    fft_mel = _mel(np.arange(FFT // 2) * RATE / FFT)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (fft_mel - left) / (centre - left)
    down = (right - fft_mel) / (right - centre)
    weights = np.maximum(0.0, np.minimum(up, down))
    return np.pad(weights, ((0, 0), (0, 1)))  # no weight on the Nyquist bin, as Kaldi


def fbank(windows: np.ndarray, bins: int = 80) -> np.ndarray:
    """(batch, frames, bins) float32 features of (batch, samples) 16 kHz windows in [-1, 1],
    each window's mean over frames removed."""
    energies = log_mel(windows, bins)
    return (energies - energies.mean(axis=1, keepdims=True)).astype(np.float32)


def log_mel(windows: np.ndarray, bins: int = 80) -> np.ndarray:
    """(batch, frames, bins) log mel energies, before the mean is removed."""
    scaled = windows.astype(np.float64) * 32768.0
    count = 1 + (scaled.shape[1] - FRAME) // SHIFT
    if count < 1:
        raise ValueError(f"windows of {scaled.shape[1]} samples are shorter than one 25 ms frame")
    index = np.arange(FRAME)[None, :] + SHIFT * np.arange(count)[:, None]
    frames = scaled[:, index]  # (batch, frames, FRAME)
    frames = frames - frames.mean(axis=2, keepdims=True)
    previous = np.concatenate([frames[..., :1], frames[..., :-1]], axis=2)
    frames = (frames - PREEMPHASIS * previous) * np.hamming(FRAME)
    power = np.abs(np.fft.rfft(frames, n=FFT, axis=2)) ** 2
    return np.log(np.maximum(power @ mel_banks(bins).T, np.finfo(np.float32).eps))
