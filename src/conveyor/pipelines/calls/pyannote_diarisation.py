"""Mono diarisation by a pyannote.audio pipeline whose weights the user has locally.

Set ``CONVEYOR_CALLS_DIARISATION_MODEL`` to a folder holding a pyannote pipeline's
``config.yaml`` (e.g. ``pyannote/speaker-diarization-3.1`` saved with its segmentation and
embedding checkpoints, the config's paths pointing at them). Nothing is downloaded: the
pipeline is built from that file only. Its turns may overlap, and overlapping speech is then
reported as such (two speakers over the same stretch) instead of going to one side.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from conveyor.errors import ConfigurationError
from conveyor.pipelines.calls.clustering import SpeakerBounds
from conveyor.pipelines.calls.diarisation import RATE, Turn, relabel_by_first_speech

SETTING = "CONVEYOR_CALLS_DIARISATION_MODEL"
METHOD = "pyannote.audio pipeline ({})"


def pyannote_installed() -> bool:
    """Whether pyannote.audio can be imported on this worker (looked up, not imported)."""
    return (
        importlib.util.find_spec("pyannote") is not None
        and importlib.util.find_spec("pyannote.audio") is not None
    )


def pipeline_config(folder: Path) -> Path:
    """The pipeline's ``config.yaml`` in ``folder``, or a ConfigurationError saying what is
    wrong and how to fix it."""
    config = folder / "config.yaml" if folder.is_dir() else folder
    if not config.is_file():
        raise ConfigurationError(
            f"{SETTING}={folder}: no pyannote pipeline there (expected a folder with "
            "config.yaml whose checkpoints are local files); fix the path or unset "
            f"{SETTING} to use the built-in resemblyzer diarisation."
        )
    if not pyannote_installed():
        raise ConfigurationError(
            f"{SETTING}={folder} points at a pyannote pipeline, but pyannote.audio is not "
            "installed on this worker; install it (pip install 'pyannote.audio>=3.1') or "
            f"unset {SETTING} to use the built-in resemblyzer diarisation."
        )
    return config


def load_pipeline(folder: Path) -> Any:
    """The pyannote pipeline built from the local ``config.yaml`` (no hub access)."""
    config = pipeline_config(folder)
    from pyannote.audio import Pipeline

    pipeline = Pipeline.from_pretrained(str(config))
    if pipeline is None:
        raise ConfigurationError(f"{SETTING}={folder}: pyannote could not build the pipeline")
    return pipeline


def pyannote_turns(pipeline: Any, mono: np.ndarray, bounds: SpeakerBounds) -> list[Turn]:
    """Turns (S1, S2, ... by first speech) of ``mono`` (16 kHz), speaker count in ``bounds``."""
    import torch

    output = pipeline(
        {"waveform": torch.from_numpy(mono[None, :].astype(np.float32)), "sample_rate": RATE},
        min_speakers=bounds.min_speakers,
        max_speakers=bounds.max_speakers,
    )
    # pyannote.audio 4 wraps the annotation; 3.x returns it directly
    annotation = getattr(output, "speaker_diarization", output)
    turns = [
        Turn(float(segment.start), float(segment.end), f"K{label}")
        for segment, _, label in annotation.itertracks(yield_label=True)
    ]
    return relabel_by_first_speech(sorted(turns, key=lambda t: t.start))
