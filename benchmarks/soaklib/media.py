"""Inputs for the heavier work, each submission's bytes its own (a retried upload is then a
duplicate of the same item, never a second one): a short synthetic call with a little more
silence at the end each time, and a synthetic camera-trap clip with its own noise."""

from __future__ import annotations

import random
import shutil
import uuid
import wave
from pathlib import Path

from support.calls_audio import NEUTRAL, make_call
from support.wildlife_video import crossing_clip


class Media:
    def __init__(self, folder: Path, rng: random.Random) -> None:
        self.folder, self.rng = folder, rng
        folder.mkdir(parents=True, exist_ok=True)
        self.call: Path | None = None
        if shutil.which("espeak-ng") and shutil.which("sox"):
            self.call = make_call(NEUTRAL[:3], folder, "call").path

    def next_call(self) -> Path | None:
        """The call with 1 to 400 ms of silence added; None without espeak-ng and sox."""
        if self.call is None:
            return None
        target = self.folder / f"call-{uuid.uuid4().hex[:8]}.wav"
        with wave.open(str(self.call)) as source:
            params, frames = source.getparams(), source.readframes(source.getnframes())
        padding = b"\0" * params.sampwidth * params.nchannels * self.rng.randint(16, 6400)
        with wave.open(str(target), "wb") as out:
            out.setparams(params)
            out.writeframes(frames + padding)
        return target

    def next_clip(self) -> Path:
        """A 4 s clip of a cat crossing the frame."""
        path = self.folder / f"clip-{uuid.uuid4().hex[:8]}.mp4"
        start, end = (0.1, self.rng.uniform(0.3, 0.7)), (0.9, self.rng.uniform(0.3, 0.7))
        crossing_clip(path, [(start, end)], noise=self.rng.uniform(1.0, 4.0))
        return path
