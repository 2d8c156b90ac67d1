"""A training item reads only its model's dataset snapshot: ``datasets/<model>/<sha256>.csv``
(issue 13, finding 5: ``datasets/../work/<dir>/heart.csv`` was read)."""

from __future__ import annotations

import pytest

from conveyor.errors import PermanentStepError
from conveyor.models.training import TrainingRequest, snapshot_path

DIGEST = "ab" * 32


def _record(**changes: object) -> dict[str, object]:
    record = {
        "model": "heart",
        "dataset": snapshot_path("heart", DIGEST),
        "dataset_source": "heart.csv",
        "dataset_sha256": DIGEST,
    }
    return record | changes


def test_the_snapshot_of_the_model_is_accepted() -> None:
    request = TrainingRequest.from_record(_record(), "heart")
    assert request.dataset == f"datasets/heart/{DIGEST}.csv"


@pytest.mark.parametrize(
    "dataset",
    [
        "datasets/../work/abc/heart.csv",
        f"datasets/heart/../../work/{DIGEST}.csv",
        f"datasets/heart/./{DIGEST}.csv",
        f"datasets//heart/{DIGEST}.csv",
        f"/datasets/heart/{DIGEST}.csv",
        f"datasets/movies/{DIGEST}.csv",
        f"datasets/heart/{'cd' * 32}.csv",
        f"datasets/heart/{DIGEST}.csv\x00",
        f"datasets/heart/{DIGEST.upper()}.csv",
        "datasets/heart/heart.csv",
        5,
    ],
)
def test_every_other_dataset_path_is_refused(dataset: object) -> None:
    with pytest.raises(PermanentStepError, match=r"must be datasets/heart/<sha256>\.csv"):
        TrainingRequest.from_record(_record(dataset=dataset), "heart")


def test_a_digest_that_is_not_sha256_is_refused() -> None:
    record = _record(dataset="datasets/heart/../x.csv", dataset_sha256="../x")
    with pytest.raises(PermanentStepError, match="not a dataset snapshot"):
        TrainingRequest.from_record(record, "heart")


def test_a_record_for_another_model_is_refused() -> None:
    record = _record(model="movies", dataset=snapshot_path("movies", DIGEST))
    with pytest.raises(PermanentStepError, match="trains 'heart', not 'movies'"):
        TrainingRequest.from_record(record, "heart")


def test_a_forged_training_item_reads_nothing_and_registers_nothing(installation) -> None:  # type: ignore[no-untyped-def]
    """The attack of the review, past the item route: a heart item whose dataset is a file
    planted in a work folder (with its true digest) fails in its first step."""
    from conveyor.models.provenance import sha256_hex
    from conveyor.models.service import ModelOps
    from conveyor.pipelines.heart.data import synthetic_csv
    from conveyor.pipelines.heart.steps import heart
    from conveyor.store import queries
    from conveyor.store.submissions import NewItem, insert_items, record_content_hash

    storage = installation.storage
    data = synthetic_csv(60, seed=4)
    planted = storage.reserve_work_dir("planted")
    storage.write_bytes(planted, "heart.csv", data)
    record = _record(
        dataset=f"datasets/../{planted}/heart.csv",
        dataset_sha256=sha256_hex(data),
        requested_by="chief-medical-officer",
        trigger="schedule",
    )
    new = NewItem(
        pipeline=heart.name,
        pipeline_version=heart.version,
        kind="record",
        content_hash=record_content_hash(record),
        work_dir=storage.reserve_work_dir("forged"),
        source="api",
        record=record,
    )
    with installation.sessions.begin() as session:
        [item] = insert_items(session, [new])
    installation.controller().run_until_idle(timeout=120)
    with installation.sessions() as session:
        failed = queries.get_item(session, item.id)
    assert failed.status == "failed"
    assert "is not a dataset snapshot of model 'heart'" in (failed.error or "")
    assert ModelOps(installation).register_pending() == []
