"""The durability promises of docs/engine.md, each checked by driving real controllers on a real
store and Ray: fencing, a crash between commit and submission, retries, backpressure."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from conveyor.engine.controller import Controller
from conveyor.store import actions, queries
from conveyor.store.database import connect, session_factory
from conveyor.store.models import Item, Result, StepRun, utcnow
from support.polling import count as count_rows
from support.polling import wait_for


class Crashed(BaseException):
    """Stands for the controller process dying at the point it is raised."""


def _controller(installation, lease_seconds: float = 5.0, **options: Any) -> Controller:  # type: ignore[no-untyped-def]
    return Controller(
        sessions=installation.sessions,
        registry=installation.registry,
        executor=installation.executor,
        lease_seconds=lease_seconds,
        poll_interval=0.02,
        **options,
    )


def _item(installation, item_id: str) -> Item:  # type: ignore[no-untyped-def]
    with installation.sessions() as session:
        return queries.get_item(session, item_id)


def _runs(installation, item_id: str) -> list[tuple[str, int, str]]:  # type: ignore[no-untyped-def]
    with installation.sessions() as session:
        runs = queries.step_runs(session, item_id)
    return sorted((run.step, run.attempt, run.status) for run in runs)


def _results(installation, item_id: str) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(Result).where(Result.item_id == item_id)
    with installation.sessions() as session:
        return int(session.scalar(query) or 0)


def _runs_of_step(installation, item: Item, step: str) -> int:  # type: ignore[no-untyped-def]
    """How often the step's code really ran: each run appends a line to a file in the work dir."""
    marker = installation.storage.local_path(item.work_dir, f"runs-{step}.txt")
    return len(marker.read_text().splitlines()) if marker.exists() else 0


_SUCCEEDED = select(func.count()).select_from(Item).where(Item.status == "succeeded")


def _wait_for_lease_expiry(installation, item_id: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        expires = _item(installation, item_id).lease_expires_at
        if expires is not None and expires < utcnow():
            return
        time.sleep(0.05)
    raise AssertionError(f"the lease of item {item_id} did not expire within {timeout}s")


def test_a_late_outcome_from_a_controller_whose_lease_was_taken_over_is_refused(
    installation,
) -> None:
    [submission] = installation.submitter.submit_records("single", [{"n": 7}])
    paused = _controller(installation, lease_seconds=1.0)
    assert paused.step_once(force_claim=True) == 1
    handles = list(paused._handles)
    assert len(installation.executor.wait(handles, 60)) == 1  # its step has really finished
    _wait_for_lease_expiry(installation, submission.item_id)

    successor = _controller(installation)
    assert successor.step_once(force_claim=True) == 1  # takes over the expired lease
    paused.step_once()  # wakes up, collects the finished outcome and tries to commit it

    item = _item(installation, submission.item_id)
    assert item.status == "running" and item.lease_owner == successor.holder.owner
    assert item.lease_generation == 2
    assert _results(installation, submission.item_id) == 0, "the late outcome was written"
    assert _runs(installation, submission.item_id) == [
        ("first", 1, "lost"),
        ("first", 2, "running"),
    ]
    assert paused.active == {}

    successor.run_until_idle(timeout=60)
    paused.step_once(force_claim=True)
    assert _item(installation, submission.item_id).status == "succeeded"
    assert _results(installation, submission.item_id) == 1
    assert _runs(installation, submission.item_id) == [
        ("first", 1, "lost"),
        ("first", 2, "succeeded"),
    ]


def test_a_crash_between_the_start_commit_and_ray_submission_is_rerun_once(installation) -> None:
    [submission] = installation.submitter.submit_records("chain", [{"n": 1}])
    crashing = _controller(installation, lease_seconds=1.0)

    def crash(*_: object) -> None:
        raise Crashed

    crashing._submit = crash  # type: ignore[method-assign]
    with pytest.raises(Crashed):
        crashing.step_once(force_claim=True)
    assert _runs(installation, submission.item_id) == [("first", 1, "running")]
    _wait_for_lease_expiry(installation, submission.item_id)

    _controller(installation).run_until_idle(timeout=60)

    item = _item(installation, submission.item_id)
    assert item.status == "succeeded"
    runs = _runs(installation, submission.item_id)
    assert runs[0] == ("first", 1, "lost") and ("first", 2, "succeeded") in runs
    with installation.sessions() as session:
        lost = [r for r in queries.step_runs(session, item.id) if r.status == "lost"]
    assert "stopped before it reported" in (lost[0].error or "")
    assert _results(installation, item.id) == 1
    with installation.sessions() as session:
        assert queries.result_of(session, item.id).result == {"n": 1, "total": 3}
    for step in ("first", "second", "flaky", "last"):
        assert _runs_of_step(installation, item, step) == 1, step


def test_retry_reruns_only_failed_steps_with_a_fresh_budget(installation) -> None:
    # flaky allows 2 attempts per budget and fails its first 3 runs: the item fails once, and
    # succeeds after a retry only if the budget starts afresh.
    [submission] = installation.submitter.submit_records("chain", [{"n": 5, "fail_runs": 3}])
    controller = _controller(installation)
    controller.run_until_idle(timeout=60)
    assert _item(installation, submission.item_id).status == "failed"
    assert _runs(installation, submission.item_id) == [
        ("first", 1, "succeeded"),
        ("flaky", 1, "failed"),
        ("flaky", 2, "failed"),
        ("second", 1, "succeeded"),
    ]

    with installation.sessions.begin() as session:
        actions.retry_item(session, submission.item_id)
    controller.run_until_idle(timeout=60)

    item = _item(installation, submission.item_id)
    assert item.status == "succeeded", item.error
    assert _runs(installation, submission.item_id) == [
        ("first", 1, "succeeded"),
        ("flaky", 1, "failed"),
        ("flaky", 2, "failed"),
        ("flaky", 3, "failed"),
        ("flaky", 4, "succeeded"),
        ("last", 1, "succeeded"),
        ("second", 1, "succeeded"),
    ]
    ran = {step: _runs_of_step(installation, item, step) for step in ("first", "second", "last")}
    assert ran == {"first": 1, "second": 1, "last": 1}
    assert _runs_of_step(installation, item, "flaky") == 4
    assert _results(installation, item.id) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_controllers_share_one_postgresql_store_under_load(
    installation, database_url: str
) -> None:
    count = 160
    installation.submitter.submit_records("noop", [{"n": n} for n in range(count)])
    engines = [connect(database_url) for _ in range(2)]
    controllers = [
        Controller(
            sessions=session_factory(engine),
            registry=installation.registry,
            executor=installation.executor,
            poll_interval=0.01,
            max_inflight=8,
        )
        for engine in engines
    ]
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,)) for c in controllers]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: count_rows(installation, _SUCCEEDED) == count, 240, "every item")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        for engine in engines:
            engine.dispose()

    done = [controller.stats.succeeded for controller in controllers]
    assert sum(done) == count and min(done) > 0, done
    with installation.sessions() as session:
        generations = set(session.scalars(select(Item.lease_generation)))
        statuses = Counter(session.scalars(select(StepRun.status)))
        results = sorted(r.result["n"] for r in session.scalars(select(Result)))
    assert generations == {1}, "an item was claimed more than once"
    assert statuses == {"succeeded": 4 * count}
    assert results == list(range(count))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("max_inflight", "per_cpu", "bound"), [(None, 2, 8), (5, 16, 5)])
def test_in_flight_items_stay_within_the_bound_with_10000_queued(
    installation, max_inflight: int | None, per_cpu: int, bound: int
) -> None:
    _queue_rows(installation, [{"n": n, "sleep_ms": 30} for n in range(10_000)])
    controller = _controller(installation, max_inflight=max_inflight, inflight_per_cpu=per_cpu)
    assert (
        installation.executor.total_cpus() == 4
    )  # the session's Ray: bound = min(max, 4 x per_cpu)
    in_flight = (
        select(func.count()).select_from(Item).where(Item.status.in_(["running", "retrying"]))
    )
    running_steps = select(func.count()).select_from(StepRun).where(StepRun.status == "running")
    seen: list[int] = []
    while seen.count(bound) < 3 or count_rows(installation, _SUCCEEDED) < 2 * bound:
        controller.step_once()
        seen.append(count_rows(installation, in_flight))
        assert seen[-1] <= bound, seen
        assert count_rows(installation, running_steps) <= 2 * bound  # b and c run side by side
    controller.shutdown()
    assert count_rows(installation, _SUCCEEDED) <= 3 * bound


def _queue_rows(installation, records: list[dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    """Queue records as rows straight in the store (submitting makes a work folder for each)."""
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4().hex,
            "pipeline": "noop",
            "pipeline_version": "1",
            "kind": "record",
            "source": "api",
            "record": record,
            "content_hash": f"{n:064x}",
            "work_dir": f"work/{n}",
            "status": "queued",
            "cancel_requested": False,
            "created_at": now + timedelta(microseconds=n),
            "queued_at": now,
            "updated_at": now,
            "lease_generation": 0,
        }
        for n, record in enumerate(records)
    ]
    with installation.sessions.begin() as session:
        session.execute(insert(Item), rows)
