"""Processes that load a model into a shared cache at the same instant (spawned, so each is a
fresh interpreter like a Ray worker): each waits on a barrier, loads, uses the model once and
reports what it logged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path
from typing import Any


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _worker(load: Callable[[Path], Any], cache: str, barrier: Any, results: Any) -> None:
    collect = _Collect()
    logger = logging.getLogger("conveyor")
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    try:
        barrier.wait(timeout=300)
        results.put(("ok", load(Path(cache)), collect.messages))
    except BaseException as error:
        results.put(("error", repr(error), collect.messages))


def load_together(load: Callable[[Path], Any], cache: Path, count: int = 2) -> list[tuple]:
    """Run ``load(cache)`` in ``count`` fresh processes released together; their reports."""
    context = get_context("spawn")
    barrier, results = context.Barrier(count), context.Queue()
    workers = [
        context.Process(target=_worker, args=(load, str(cache), barrier, results))
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    return reports


def whisper_model_folder(cache: Path) -> str:
    """Join the packaged Whisper base into ``cache`` and load it with faster-whisper."""
    from faster_whisper import WhisperModel

    from conveyor.pipelines.calls.models import default_whisper_folder

    folder = default_whisper_folder(cache)
    WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=1)
    return str(folder)


def wildlife_classifier_scores(cache: Path) -> list[float]:
    """Export (or reuse) the wildlife classifier's ONNX file in ``cache``; score one image."""
    import numpy as np

    from conveyor.pipelines.wildlife.classifier import Classifier

    image = np.tile(np.arange(64, dtype=np.uint8)[:, None, None] * 4, (1, 64, 3))
    probabilities = Classifier(threads=1, cache_dir=cache).probabilities([image])
    return probabilities[0, :5].tolist()
