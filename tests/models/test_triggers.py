"""Training by schedule and by new data: each fires once per period (or batch of rows), across
restarts and with two processes ticking at the same time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from conveyor.errors import ConfigurationError
from conveyor.installation import Installation
from conveyor.models.schema import DatasetError
from conveyor.models.service import ModelOps
from conveyor.models.triggers import latest_slot
from conveyor.pipelines.heart.data import synthetic_csv, synthetic_rows
from conveyor.settings import ModelSettings
from conveyor.store import queries
from conveyor.store.models import Item


def _configure(installation, dataset: Path, **options) -> None:  # type: ignore[no-untyped-def]
    installation.settings.models = {
        "heart": ModelSettings(dataset=str(dataset), params={"cv_folds": 3}, **options)
    }


def _training_items(installation) -> list[Item]:  # type: ignore[no-untyped-def]
    with installation.sessions() as session:
        query = select(Item).where(Item.pipeline == "heart").order_by(Item.created_at)
        return list(session.scalars(query))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "heart.csv"
    path.write_bytes(synthetic_csv(60, seed=8))
    return path


def test_latest_slot_of_a_cron_expression() -> None:
    assert latest_slot("*/5 * * * *", datetime(2026, 1, 1, 10, 7, 30)) == datetime(
        2026, 1, 1, 10, 5
    )
    assert latest_slot("*/5 * * * *", datetime(2026, 1, 1, 10, 5)) == datetime(2026, 1, 1, 10, 5)
    with pytest.raises(ConfigurationError, match="not a cron expression"):
        latest_slot("every day", datetime(2026, 1, 1))


def test_schedule_fires_once_per_period_across_restart_and_two_processes(
    installation, dataset
) -> None:
    _configure(installation, dataset, schedule="*/5 * * * *")
    ops = ModelOps(installation)
    assert ops.triggers.fire_schedules(datetime(2026, 1, 1, 10, 2)) == []  # first sight
    [fired] = ops.triggers.fire_schedules(datetime(2026, 1, 1, 10, 6))
    assert ops.triggers.fire_schedules(datetime(2026, 1, 1, 10, 9)) == []

    restarted = Installation(installation.settings)  # a new process on the same store
    other = Installation(installation.settings)  # and a second one running beside it
    try:
        first, second = ModelOps(restarted), ModelOps(other)
        assert first.triggers.fire_schedules(datetime(2026, 1, 1, 10, 7)) == []
        at = datetime(2026, 1, 1, 10, 12)
        both = first.triggers.fire_schedules(at) + second.triggers.fire_schedules(at)
        assert len(both) == 1
    finally:
        restarted.close()
        other.close()
    items = _training_items(installation)
    assert [item.id for item in items] == [fired, both[0]]
    assert {item.record["trigger"] for item in items} == {"schedule"}


def test_data_trigger_fires_after_n_new_rows_and_trains_on_them(installation, dataset) -> None:
    _configure(installation, dataset, retrain_after_rows=5)
    ops = ModelOps(installation)
    rows = "\n".join(",".join(row) for row in synthetic_rows(8, seed=9)).encode()
    first_three = b"\n".join(rows.splitlines()[:3])
    assert ops.triggers.add_rows("heart", first_three, "wearable") == 3
    assert ops.triggers.fire_row_triggers() == []
    assert ops.triggers.add_rows("heart", b"\n".join(rows.splitlines()[3:5]), "wearable") == 2
    [item_id] = ops.triggers.fire_row_triggers()
    assert ops.triggers.fire_row_triggers() == []  # those rows are used up
    assert ops.triggers.pending_rows("heart") == (0, 5)
    installation.controller().run_until_idle(timeout=180)
    with installation.sessions() as session:
        item = queries.get_item(session, item_id)
        result = queries.result_of(session, item_id)
    assert item.status == "succeeded", item.error
    assert result.result["dataset"]["rows"] == 65
    assert result.result["dataset"]["source"].endswith("+ 5 new rows")
    assert [r.version for r in ops.register_pending()] == [1]


def test_bad_new_rows_are_refused_naming_the_value(installation, dataset) -> None:
    _configure(installation, dataset, retrain_after_rows=5)
    with pytest.raises(DatasetError, match=r"row 1, column 'sex': 2 is not one of 0, 1"):
        ModelOps(installation).triggers.add_rows(
            "heart", b"63,2,1,145,233,1,2,150,0,2.3,3,0,6,0\n", "wearable"
        )


def test_configuration_errors_name_the_setting(installation, dataset) -> None:
    _configure(installation, dataset, schedule="at noon")
    with pytest.raises(ConfigurationError, match="'at noon' is not a cron expression"):
        ModelOps(installation).check_configuration()
    installation.settings.models = {"noop": ModelSettings(schedule="0 3 * * *")}
    with pytest.raises(ConfigurationError, match=r"models\.noop .* not a training pipeline"):
        ModelOps(installation).check_configuration()


def test_event_trigger_fires_once_per_event_of_a_listed_type(installation, dataset) -> None:
    _configure(installation, dataset, retrain_on_events=["drift-detected"])
    ops = ModelOps(installation)
    ignored = ops.triggers.publish_event("heart", "firmware-updated", {"v": 2}, "test")
    first = ops.triggers.publish_event("heart", "drift-detected", {"psi": 0.3}, "test")
    second = ops.triggers.publish_event("heart", "drift-detected", {"psi": 0.4}, "test")
    other = Installation(installation.settings)  # a second process ticking beside this one
    try:
        fired = ops.triggers.fire_event_triggers() + ModelOps(other).triggers.fire_event_triggers()
        assert ModelOps(other).triggers.fire_event_triggers() == []
    finally:
        other.close()
    assert len(fired) == 2
    assert ops.triggers.event(ignored).item_id is None
    assert {ops.triggers.event(first).item_id, ops.triggers.event(second).item_id} == set(fired)
    items = _training_items(installation)
    assert [item.id for item in items] == fired
    assert {item.record["trigger"] for item in items} == {"event"}
    assert ops.tick() == []  # nothing left waiting; the loop starts no second run
