"""The controller drives items to a final state on a real Ray instance and a real store."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from conveyor.store import actions, queries
from conveyor.store.models import Result, StepRun


def _statuses(installation) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with installation.sessions() as session:
        return queries.counts_by_status(session).get("noop", {})


def test_thousand_items_all_succeed_with_results_written_once(installation) -> None:
    installation.submitter.submit_records("noop", [{"n": n} for n in range(1000)])
    controller = installation.controller()
    controller.run_until_idle(timeout=300)
    assert _statuses(installation) == {"succeeded": 1000}
    with installation.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Result)) == 1000
        assert session.scalar(select(func.count()).select_from(StepRun)) == 4000
        values = sorted(r.result["n"] for r in session.scalars(select(Result)))
    assert values == list(range(1000))


def test_dag_passes_outputs_and_captures_logs_and_artifacts(installation, tmp_path: Path) -> None:
    source = tmp_path / "notes one.txt"
    source.write_text("the quick brown fox jumps")
    submission = installation.submitter.submit_file("text_stats", source)
    installation.controller().run_until_idle(timeout=60)
    with installation.sessions() as session:
        item = queries.get_item(session, submission.item_id)
        runs = {run.step: run for run in queries.step_runs(session, item.id)}
        result = queries.result_of(session, item.id)
    assert item.status == "succeeded"
    assert result is not None and result.pipeline_version == "2"
    assert result.result == {"name": "notes one.txt", "bytes": 25, "words": 5}
    assert "measuring notes one.txt (25 bytes)" in (runs["measure"].logs or "")
    assert runs["measure"].worker and runs["measure"].started_at <= runs["measure"].finished_at
    artifacts = installation.storage.list_files(item.work_dir)
    assert "words.txt" in artifacts and "notes one.txt" in artifacts


def test_permanent_error_fails_fast_keeps_input_and_stores_error(installation, tmp_path) -> None:
    bad = tmp_path / "bad input.txt"
    bad.write_bytes(b"BAD data")
    submission = installation.submitter.submit_file("text_stats", bad)
    installation.controller().run_until_idle(timeout=60)
    with installation.sessions() as session:
        item = queries.get_item(session, submission.item_id)
        runs = queries.step_runs(session, item.id)
    assert item.status == "failed"
    assert "starts with BAD" in (item.error or "") and "permanent" in (item.error or "")
    assert [(r.step, r.status) for r in runs] == [("measure", "failed")]
    assert installation.storage.list_files(item.work_dir) == ["bad input.txt"]


def test_transient_error_is_retried_with_each_attempt_recorded(installation) -> None:
    [submission] = installation.submitter.submit_records("noop", [{"fail": "transient"}])
    installation.controller().run_until_idle(timeout=60)
    with installation.sessions() as session:
        item = queries.get_item(session, submission.item_id)
        attempts = [
            (r.attempt, r.status) for r in queries.step_runs(session, item.id) if r.step == "b"
        ]
    assert item.status == "succeeded"
    assert attempts == [(1, "failed"), (2, "succeeded")]


def test_step_timeout_fails_the_step(installation) -> None:
    [submission] = installation.submitter.submit_records("timeouts", [{"seconds": 10}])
    installation.controller().run_until_idle(timeout=60)
    with installation.sessions() as session:
        item = queries.get_item(session, submission.item_id)
    assert item.status == "failed"
    assert "timeout of 1s" in (item.error or "")


def test_same_content_is_not_processed_twice_unless_forced(installation) -> None:
    first = installation.submitter.submit_records("noop", [{"same": 1}])[0]
    again = installation.submitter.submit_records("noop", [{"same": 1}])[0]
    forced = installation.submitter.submit_records("noop", [{"same": 1}], force=True)[0]
    assert again.duplicate and again.item_id == first.item_id
    assert not forced.duplicate and forced.item_id != first.item_id


def test_cancel_queued_and_retry_failed(installation) -> None:
    queued, failing = installation.submitter.submit_records(
        "noop", [{"n": 1}, {"fail": "permanent"}]
    )
    with installation.sessions.begin() as session:
        actions.cancel_item(session, queued.item_id)
    installation.controller().run_until_idle(timeout=60)
    with installation.sessions() as session:
        assert queries.get_item(session, queued.item_id).status == "cancelled"
        assert queries.get_item(session, failing.item_id).status == "failed"
    with installation.sessions.begin() as session:
        assert actions.retry_failed(session, "noop") == 1
        actions.retry_item(session, queued.item_id)
    installation.controller().run_until_idle(timeout=60)
    with installation.sessions() as session:
        assert queries.get_item(session, queued.item_id).status == "succeeded"
        failed_again = queries.get_item(session, failing.item_id)
        assert failed_again.status == "failed"
        b_runs = [r for r in queries.step_runs(session, failing.item_id) if r.step == "b"]
    assert len(b_runs) == 2  # one per submission of the item; step a was not re-run


def test_store_result_writes_scenario_rows_once_or_fails_the_item(installation) -> None:
    from support.pipelines import TABLED_METADATA, tabled_rows

    TABLED_METADATA.create_all(installation.engine)
    kept, refused = installation.submitter.submit_records(
        "tabled", [{"n": 21}, {"n": 5, "refuse": True}]
    )
    controller = installation.controller()
    controller.run_until_idle(timeout=60)
    with installation.sessions() as session:
        good = queries.get_item(session, kept.item_id)
        bad = queries.get_item(session, refused.item_id)
        rows = session.execute(select(tabled_rows.c.item_id, tabled_rows.c.doubled)).all()
        bad_result = queries.result_of(session, refused.item_id)
    assert good.status == "succeeded"
    assert rows == [(kept.item_id, 42)]
    assert bad.status == "failed" and bad_result is None
    assert "could not be stored in the tabled tables" in (bad.error or "")
    assert "refused on purpose" in (bad.error or "")
    assert (controller.stats.succeeded, controller.stats.failed) == (1, 1)  # as the store wrote
