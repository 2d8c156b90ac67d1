"""A commit report says what the store wrote, which is not always what the batch asked for."""

from __future__ import annotations

from conveyor.core.commits import CommitBatch, CommitReport, ItemChange
from conveyor.core.lifecycle import ItemStatus


def test_an_unstored_result_is_written_as_a_failure() -> None:
    kept = ItemChange("kept", ItemStatus.SUCCEEDED)
    refused = ItemChange("refused", ItemStatus.SUCCEEDED)
    retried = ItemChange("retried", ItemStatus.RETRYING)
    report = CommitReport(unstored={"refused": "the tables refused it"})
    assert [report.written_status(c) for c in (kept, refused, retried)] == [
        ItemStatus.SUCCEEDED,
        ItemStatus.FAILED,
        ItemStatus.RETRYING,
    ]


def test_a_batch_names_every_item_it_touches() -> None:
    batch = CommitBatch(changes=[ItemChange("a", ItemStatus.RUNNING)])
    assert batch and batch.item_ids() == {"a"}
    assert not CommitBatch()
