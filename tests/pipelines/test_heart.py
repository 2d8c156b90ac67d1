"""The heart scenario: its schema check names bad values, its generator fits the schema, and
invalid training data fails the training item with that message."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.models.schema import DatasetError, parse_table
from conveyor.models.service import ModelOps
from conveyor.models.tabular import FAMILIES
from conveyor.pipelines.heart.data import (
    CLEVELAND_SOURCE,
    HEART_SCHEMA,
    cleveland_csv,
    synthetic_csv,
    synthetic_rows,
)
from conveyor.pipelines.heart.steps import CANDIDATE_NAMES, heart
from conveyor.store import queries

GOOD = "63,1,1,145,233,1,2,150,0,2.3,3,0,6,0"


def test_synthetic_data_fits_the_schema_with_missing_markers() -> None:
    table = parse_table(HEART_SCHEMA, synthetic_csv(300, seed=3, missing_rate=0.05), "synthetic")
    assert list(table.columns) == HEART_SCHEMA.names and len(table) == 300
    assert table[["ca", "thal"]].isna().sum().sum() > 0
    assert set(table["num"]) <= {0, 1, 2, 3, 4} and 0.3 < (table["num"] > 0).mean() < 0.6
    assert synthetic_rows(5, seed=3) == synthetic_rows(5, seed=3)


def test_the_shipped_cleveland_table_is_the_default_and_fits_the_schema() -> None:
    table = parse_table(HEART_SCHEMA, cleveland_csv(), "cleveland.csv")
    assert len(table) == 303 and (table["num"] > 0).sum() == 139  # 139 with disease (UCI)
    assert table[["ca", "thal"]].isna().sum().sum() == 6
    assert heart.default_dataset is cleveland_csv
    assert heart.default_dataset_source == CLEVELAND_SOURCE


def test_question_mark_and_empty_cells_are_missing_only_where_allowed() -> None:
    data = f"{GOOD}\n63,1,1,145,233,1,2,150,0,2.3,3,?,,0\n".encode()
    table = parse_table(HEART_SCHEMA, data, "x.csv")
    assert table.loc[1, ["ca", "thal"]].isna().all()
    with pytest.raises(DatasetError, match=r"row 2, column 'chol': value is missing"):
        parse_table(HEART_SCHEMA, f"{GOOD}\n63,1,1,145,?,1,2,150,0,2.3,3,0,6,0".encode(), "x")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("63,1,1,145,abc,1,2,150,0,2.3,3,0,6,0", "row 2, column 'chol': 'abc' is not a number"),
        ("63,1,5,145,233,1,2,150,0,2.3,3,0,6,0", "row 2, column 'cp': 5 is not one of 1, 2, 3, 4"),
        ("263,1,1,145,233,1,2,150,0,2.3,3,0,6,0", "row 2, column 'age': 263 is outside 1..120"),
        ("63,1,1,145,233,1,2,150,0,2.3,3,0,6", "row 2: expected 14 values"),
        ("63,1,1,145,233,1,2,150,0,2.3,3,0,4,0", "column 'thal': 4 is not one of 3, 6, 7"),
    ],
)
def test_invalid_values_are_named_by_row_column_and_value(row: str, message: str) -> None:
    with pytest.raises(DatasetError) as caught:
        parse_table(HEART_SCHEMA, f"{GOOD}\n{row}\n".encode(), "heart.csv")
    assert message in str(caught.value) and "heart.csv" in str(caught.value)


def test_candidate_names_match_the_model_families() -> None:
    assert set(CANDIDATE_NAMES) == set(FAMILIES)


def test_invalid_training_data_fails_the_run_with_a_clear_message(
    installation, tmp_path: Path
) -> None:
    rows = synthetic_csv(60, seed=2).decode().splitlines()
    rows[16] = rows[16].rsplit(",", 2)[0] + ",5,0"  # thal = 5 on line 17
    bad = tmp_path / "bad heart.csv"
    bad.write_text("\n".join(rows) + "\n")
    ops = ModelOps(installation)
    submission = ops.train("heart", {"dataset": str(bad), "cv_folds": 3})
    installation.controller().run_until_idle(timeout=120)
    with installation.sessions() as session:
        item = queries.get_item(session, submission.item_id)
    assert item.status == "failed"
    assert "row 17, column 'thal': 5 is not one of 3, 6, 7" in (item.error or "")
    assert ops.register_pending() == []


def test_unknown_parameter_is_refused_before_anything_runs(installation, tmp_path) -> None:
    from conveyor.errors import InputRejectedError

    with pytest.raises(InputRejectedError, match="has no parameter learning_rat"):
        ModelOps(installation).train("heart", {"learning_rat": 0.1})
