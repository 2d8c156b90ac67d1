"""Exported rows as tables: nested results spread over dotted columns, mixed cells made safe for
Arrow, polars asked for clearly when missing, and every value escaped in notebook HTML."""

from __future__ import annotations

import importlib.util

import pytest

from conveyor.client import ResultSet
from conveyor.client.frames import flatten
from conveyor.client.models import Item, ItemResult, build

ROWS = [
    {
        "item_id": "a1",
        "input": "<script>alert(1)</script>.csv",
        "pipeline": "csv_profile",
        "pipeline_version": "1",
        "status": "succeeded",
        "finished_at": "2026-11-28T05:00:00.5",
        "error": None,
        "result": {"rows": 3, "columns": {"names": ["a", "b"], "count": 2}},
    },
    {
        "item_id": "b2",
        "input": "plain.csv",
        "pipeline": "csv_profile",
        "pipeline_version": "1",
        "status": "failed",
        "finished_at": "2026-11-28T05:00:01",
        "error": "bad & worse",
        "result": None,
    },
]


def test_nested_results_become_dotted_columns() -> None:
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": {}}, "result") == {
        "result.a.b": 1,
        "result.a.c": [1, 2],
        "result.d": {},
    }
    frame = ResultSet("csv_profile", ROWS).to_pandas()
    assert list(frame.columns)[-3:] == [
        "result.rows",
        "result.columns.names",
        "result.columns.count",
    ]
    assert frame["result.rows"].tolist()[0] == 3 and str(frame["finished_at"].dt.tz) == "UTC"
    unflattened = ResultSet("csv_profile", ROWS).to_pandas(flatten=False)
    assert unflattened["result"][0]["columns"]["count"] == 2


def test_arrow_takes_lists_as_json_text_and_times_as_timestamps() -> None:
    table = ResultSet("csv_profile", ROWS).to_arrow()
    assert table.column("result.columns.names").to_pylist() == ['["a", "b"]', None]
    assert str(table.schema.field("finished_at").type) == "timestamp[us, tz=UTC]"


@pytest.mark.skipif(importlib.util.find_spec("polars") is not None, reason="polars installed")
def test_polars_missing_says_what_to_install() -> None:
    with pytest.raises(ImportError, match="pip install polars"):
        ResultSet("csv_profile", ROWS).to_polars()


def test_notebook_html_escapes_user_input() -> None:
    shown = ResultSet("csv_profile", ROWS)._repr_html_()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in shown and "<script>" not in shown
    assert "bad &amp; worse" in shown
    result = ItemResult("a1", "csv_profile", "1", {"note": "<b>bold</b>"})._repr_html_()
    assert "&lt;b&gt;bold&lt;/b&gt;" in result and "<b>" not in result
    item = build(Item, {**ROWS[0], "kind": "file", "input_size": 1, "content_hash": "h",
                        "source": "api", "created_at": "2026-11-28T05:00:00",
                        "started_at": None, "cancel_requested": False})  # fmt: skip
    assert "<script>" not in item._repr_html_()
