"""Typed results from the API's JSON: unknown fields ignored (a newer server), times in UTC,
versions compared, predictions flattened, and notebook HTML escaped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.client.models import (
    Model,
    ModelVersion,
    Submission,
    VersionComparison,
    build,
    prediction_rows,
)

VERSIONS = {
    "name": "heart",
    "aliases": {"champion": 1, "challenger": 2},
    "versions": [
        {"version": 2, "aliases": ["challenger"], "created_at": "2026-11-28T05:00:00",
         "run_id": "r2", "metrics": {"heldout_roc_auc": 0.91, "heldout_brier": 0.12},
         "params": {"dataset_source": "<img src=x onerror=alert(1)>"}, "added_later": True},
        {"version": 1, "aliases": ["champion"], "created_at": "2026-11-27T05:00:00+01:00",
         "run_id": "r1", "metrics": {"heldout_roc_auc": 0.95, "heldout_brier": 0.10},
         "params": {}},
    ],
}  # fmt: skip


def test_unknown_fields_are_ignored_and_times_are_utc() -> None:
    submission = build(Submission, {"item_id": "a", "duplicate": False, "url": "u", "new": 1})
    assert submission == Submission("a", False, "u", None)
    model = Model.from_api(VERSIONS)
    assert model.version(2).created_at == datetime(2026, 11, 28, 5, tzinfo=UTC)
    assert model.version(1).created_at == datetime(2026, 11, 27, 4, tzinfo=UTC)
    with pytest.raises(KeyError, match="no version 7"):
        model.version(7)


def test_versions_side_by_side() -> None:
    comparison = VersionComparison("heart", Model.from_api(VERSIONS).versions)
    assert comparison.metrics == ["heldout_brier", "heldout_roc_auc"]
    assert comparison.best("heldout_roc_auc").version == 1
    assert comparison.best("heldout_brier", higher_is_better=False).version == 1
    frame = comparison.to_pandas()
    assert frame.loc[2, "heldout_roc_auc"] == 0.91 and frame.loc[1, "aliases"] == "champion"
    with pytest.raises(KeyError, match="no version of heart has the metric"):
        comparison.best("accuracy")


def test_version_html_escapes_params() -> None:
    version: ModelVersion = Model.from_api(VERSIONS).version(2)
    shown = version._repr_html_()
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown and "<img" not in shown


def test_prediction_rows_carry_the_version_that_answered() -> None:
    answer = {
        "endpoint": "heart", "model": "heart", "version": 3, "arm": "canary",
        "predictions": [{"id": "p1", "label": 1, "probability": 0.9}, 0.5],
    }  # fmt: skip
    assert prediction_rows(answer) == [
        {
            "id": "p1",
            "label": 1,
            "probability": 0.9,
            "model": "heart",
            "version": 3,
            "arm": "canary",
        },
        {"prediction": 0.5, "model": "heart", "version": 3, "arm": "canary"},
    ]
