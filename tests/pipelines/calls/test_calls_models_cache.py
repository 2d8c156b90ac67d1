"""Two workers loading the packaged Whisper model into an empty cache at once (issue 12): both
succeed, exactly one joins the model, and the cache holds one whole copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conveyor.pipelines.calls.models import WHISPER_PACKAGES, _package_data
from support.cache_workers import load_together, whisper_model_folder


def _joined_parts_digest() -> str:
    digest = hashlib.sha256()
    parts = sorted(p for name in WHISPER_PACKAGES for p in _package_data(name).glob("model.bin.*"))
    for part in parts:
        digest.update(part.read_bytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_two_workers_join_the_whisper_model_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "whisper-base"
    reports = load_together(whisper_model_folder, cache)
    assert [status for status, _, _ in reports] == ["ok", "ok"], reports
    assert [folder for _, folder, _ in reports] == [str(cache), str(cache)]
    logs = [message for _, _, messages in reports for message in messages]
    assert sum("joined Whisper base model" in m for m in logs) == 1, logs  # one did the work
    # The other one waited, unless it reached the cache only after the work was done.
    assert sum("another Conveyor process is joining" in m for m in logs) <= 1, logs
    files = {p.name for p in cache.iterdir()}
    assert files == {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"}
    assert hashlib.sha256((cache / "model.bin").read_bytes()).hexdigest() == _joined_parts_digest()
