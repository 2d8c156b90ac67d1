"""File pipelines for upload tests: one that never reads its input whole (for very large
uploads), and one that probes the content as audio before accepting it."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

from conveyor.errors import InputRejectedError
from conveyor.pipeline import Pipeline, StepContext, step


@step(retries=0)
def file_size(context: StepContext) -> dict[str, Any]:
    return {"bytes": context.input_path().stat().st_size, "name": context.input_name}


sizes = Pipeline("sizes", version="1", dag={file_size: []}, accepts=("file",))


def check_wave(path: Path) -> None:
    """Accept WAV audio by its content, whatever the file is called."""
    try:
        with wave.open(str(path), "rb") as audio:
            audio.getnframes()
    except (wave.Error, EOFError) as error:
        raise InputRejectedError(
            f"{path.name!r} is not WAV audio ({error}); upload a .wav recording."
        ) from None


@step(retries=0)
def duration(context: StepContext) -> float:
    with wave.open(str(context.input_path()), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


wave_duration = Pipeline(
    "wave_duration", version="1", dag={duration: []}, accepts=("file",), check_input=check_wave
)
