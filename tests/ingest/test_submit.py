"""Duplicate rules (docs/engine.md): the same content for the same pipeline version returns the
earlier item, unless that item failed or was cancelled, the version changed, or it is forced."""

from __future__ import annotations

from pathlib import Path

from conveyor.ingest.submit import Submitter
from conveyor.pipeline import Pipeline
from conveyor.pipeline.registry import PipelineRegistry
from conveyor.pipelines.noop import a, b, c, d
from conveyor.store import actions, queries


def _status(installation, item_id: str) -> str:  # type: ignore[no-untyped-def]
    with installation.sessions() as session:
        return queries.get_item(session, item_id).status


def test_queued_and_succeeded_content_returns_the_earlier_item_unless_forced(
    installation,
) -> None:
    submit = installation.submitter.submit_records
    [first] = submit("noop", [{"k": 1}])
    [queued_again] = submit("noop", [{"k": 1}])
    assert queued_again.duplicate and queued_again.item_id == first.item_id
    installation.controller().run_until_idle(timeout=60)
    assert _status(installation, first.item_id) == "succeeded"
    [done_again] = submit("noop", [{"k": 1}])
    assert done_again.duplicate and done_again.item_id == first.item_id
    [forced] = submit("noop", [{"k": 1}], force=True)
    assert not forced.duplicate and forced.item_id != first.item_id
    [after_forced] = submit("noop", [{"k": 1}])
    assert after_forced.item_id == first.item_id  # the earliest item that did not fail


def test_failed_or_cancelled_content_makes_a_new_item(installation) -> None:
    submit = installation.submitter.submit_records
    [failing] = submit("noop", [{"fail": "permanent"}])
    [cancelled] = submit("noop", [{"k": 2}])
    with installation.sessions.begin() as session:
        actions.cancel_item(session, cancelled.item_id)
    installation.controller().run_until_idle(timeout=60)
    assert _status(installation, failing.item_id) == "failed"
    assert _status(installation, cancelled.item_id) == "cancelled"

    [again_failed, again_cancelled] = submit("noop", [{"fail": "permanent"}, {"k": 2}])
    assert not again_failed.duplicate and again_failed.item_id != failing.item_id
    assert not again_cancelled.duplicate and again_cancelled.item_id != cancelled.item_id
    [third] = submit("noop", [{"k": 2}])
    assert third.duplicate and third.item_id == again_cancelled.item_id


def test_a_new_pipeline_version_makes_a_new_item(installation) -> None:
    [old] = installation.submitter.submit_records("noop", [{"k": 3}])
    version_2 = Pipeline(
        "noop", version="2", dag={a: [], b: [a], c: [a], d: [b, c]}, accepts=("record",)
    )
    upgraded = Submitter(installation.sessions, installation.storage, PipelineRegistry([version_2]))
    [new] = upgraded.submit_records("noop", [{"k": 3}])
    assert not new.duplicate and new.item_id != old.item_id
    with installation.sessions() as session:
        assert queries.get_item(session, new.item_id).pipeline_version == "2"
    [again] = upgraded.submit_records("noop", [{"k": 3}])
    assert again.duplicate and again.item_id == new.item_id


def test_files_are_recognised_by_their_bytes_not_their_name(installation, tmp_path: Path) -> None:
    one, other = tmp_path / "one.txt", tmp_path / "other name.txt"
    one.write_bytes(b"BAD same bytes")  # fails permanently in text_stats
    other.write_bytes(b"BAD same bytes")
    first = installation.submitter.submit_file("text_stats", one)
    same = installation.submitter.submit_file("text_stats", other)
    assert same.duplicate and same.item_id == first.item_id
    installation.controller().run_until_idle(timeout=60)
    assert _status(installation, first.item_id) == "failed"
    after_failure = installation.submitter.submit_file("text_stats", other)
    assert not after_failure.duplicate and after_failure.item_id != first.item_id
