"""Two workers loading the wildlife classifier into an empty cache at once (issue 12): both
succeed with the same scores, exactly one exports the ONNX file, and the cache
holds that one file and no partial export."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cache_workers import load_together, wildlife_classifier_scores


@pytest.mark.slow
def test_two_workers_export_the_classifier_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    reports = load_together(wildlife_classifier_scores, cache)
    assert [status for status, _, _ in reports] == ["ok", "ok"], reports
    first, second = (scores for _, scores, _ in reports)
    assert first == pytest.approx(second)
    logs = [message for _, _, messages in reports for message in messages]
    assert sum("exported the wildlife classifier" in m for m in logs) == 1, logs
    # The other one waited, unless it reached the cache only after the work was done.
    assert sum("another Conveyor process is exporting" in m for m in logs) <= 1, logs
    exported = [p.name for p in cache.iterdir() if not p.name.endswith(".lock")]
    assert len(exported) == 1 and exported[0].endswith(".onnx"), exported
